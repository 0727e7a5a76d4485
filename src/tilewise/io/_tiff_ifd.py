"""The first IFD of a small, simple TIFF, parsed with a few ``struct`` calls.

:func:`parse_layout` tells whether a file is eligible to be read whole by
:class:`~tilewise.io._tiff_whole.WholeTiffSource`, and if so what its header
promises (a :class:`StripLayout`). Eligible files, and only these:

- classic TIFF or BigTIFF, either byte order;
- exactly one IFD, without SubIFDs, ImageDepth above 1 or FillOrder 2, and with
  no tag outside :data:`_VALUED` and :data:`_DESCRIPTIVE` (another tag may make
  tifffile read the page differently);
- MinIsBlack, or RGB with at least 3 samples; contiguous samples, all of one
  8/16/32/64-bit unsigned or signed integer type or 32/64-bit float;
- uncompressed (:mod:`~tilewise.io._tiff_whole` says why compressed files are not);
- striped or tiled, every segment present, inside the file and as long as its
  pixels, and at most :data:`MAX_DECODED_BYTES` decoded.

Why not tifffile's own parse: measured again (December, tifffile 2026.3.3),
with the same eligibility checks made on ``tifffile.TiffFile(path,
_multifile=False).pages.first`` (a variant that passes every test of
tests/io/test_tiff_whole.py). Opening and reading 2,000 of the collection
benchmark's 512 x 512 uint8 TIFFs in one process costs 0.17-0.20 CPU s with this
parser and 0.68-0.76 CPU s with tifffile's (3 alternate runs each), and in
``python benchmarks/collection.py --files 2000 --repeat 5 --only serial,tilewise``
(2 alternate runs each, same session) tilewise's process tree used 1.03-1.04 CPU s
with this parser and 1.34-1.57 CPU s with tifffile's; wall times on the shared
2-core machine varied more than that between runs. tifffile reads every tag of
the page into objects, this parser only the values it checks: it stays.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GEO_TAGS", "MAX_DECODED_BYTES", "StripLayout", "parse_layout"]

#: Largest image (or single tile) decoded whole, in bytes.
MAX_DECODED_BYTES = 64 << 20

#: Tags whose values decide eligibility and layout.
_VALUED = {
    256: "ImageWidth",
    257: "ImageLength",
    258: "BitsPerSample",
    259: "Compression",
    262: "Photometric",
    266: "FillOrder",
    273: "StripOffsets",
    277: "SamplesPerPixel",
    278: "RowsPerStrip",
    279: "StripByteCounts",
    284: "PlanarConfig",
    305: "Software",
    317: "Predictor",
    322: "TileWidth",
    323: "TileLength",
    324: "TileOffsets",
    325: "TileByteCounts",
    339: "SampleFormat",
    338: "ExtraSamples",
    32997: "ImageDepth",
}
#: Tags that only describe the image; neither reader's pixels depend on them.
_DESCRIPTIVE = frozenset(
    {
        254, 255,  # NewSubfileType, SubfileType
        269, 270, 271, 272, 285, 306, 315, 316, 33432,  # names, text, dates, Copyright
        274, 282, 283, 286, 287, 296, 297,  # Orientation, resolution, position, PageNumber
        280, 281, 340, 341,  # (S)Min/MaxSampleValue
        318, 319, 34675,  # WhitePoint, PrimaryChromaticities, ICC profile
        700, 33723, 34377, 34665, 34853,  # XMP, IPTC, Photoshop, Exif IFD, GPS IFD
        33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113,  # GeoTIFF, GDAL metadata/nodata
        50838, 50839,  # ImageJ metadata
    }
)  # fmt: skip
#: Tags whose meaning GDAL reads (GeoTIFF georeferencing, GDAL metadata and nodata): a file
#: with one of them has its georeferencing read by rasterio (``io._raster``).
GEO_TAGS = frozenset({33550, 33922, 34264, 34735, 42112, 42113})
#: TIFF field types of the values read: ASCII (Software only), SHORT, LONG, LONG8. (tifffile
#: reads some BYTE-typed values as bytes, so a file using them is left to TiffSource.)
_TYPES = {2: "s", 3: "H", 4: "I", 16: "Q"}
_TYPE_BYTES = {2: 1, 3: 2, 4: 4, 16: 8}
#: Compressions read whole: none only (module docstring: libtiff truncates some damaged
#: compressed segments silently). libtiff also decodes LZW 5, Deflate 8/32946, PackBits
#: 32773 and Zstd 50000 bit-exactly; the checks below keep them safe if they are added back.
_COMPRESSIONS = frozenset({1})
#: Those libtiff applies a Predictor to (it ignores one with none or PackBits; tifffile does not).
_PREDICTED = frozenset({5, 8, 32946, 50000})
#: (SampleFormat, BitsPerSample) -> dtype.
_DTYPES = {
    **{(1, bits): f"u{bits // 8}" for bits in (8, 16, 32, 64)},
    **{(2, bits): f"i{bits // 8}" for bits in (8, 16, 32, 64)},
    (3, 32): "f4",
    (3, 64): "f8",
}


@dataclass(frozen=True, slots=True)
class StripLayout:
    """What an eligible file's header promises."""

    shape: tuple[int, int]
    bands: int
    dtype: np.dtype[Any]
    block: tuple[int, int]
    tiled: bool
    compression: int
    bigtiff: bool
    #: Where the pixels start when the strips lie back to back (the image is then a view of
    #: the file's bytes, as tifffile reads a contiguous page); None otherwise.
    contiguous_at: int | None = None
    byteorder: str = "<"
    #: PhotometricInterpretation: 1 (MinIsBlack) or 2 (RGB).
    photometric: int = 1
    #: Whether the last sample is alpha (ExtraSamples 1 or 2).
    alpha: bool = False
    #: The file has GeoTIFF or GDAL tags (:data:`GEO_TAGS`).
    geotagged: bool = False


def _first_ifd(data: bytes) -> tuple[dict[str, tuple[Any, ...]], bool, str, int] | None:
    """The values of the :data:`_VALUED` tags of the only IFD, whether it is BigTIFF,
    the byte order (``"<"`` or ``">"``), and how far into ``data`` the parse read.

    None when the file has more than one IFD, a tag outside the known ones, a
    repeated tag or a valued tag of an unexpected type. Raises ``struct.error``
    (or ``OverflowError``) when an offset or count points outside ``data``.
    """
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        return None
    (magic,) = struct.unpack_from(order + "H", data, 2)
    if magic == 42:
        bigtiff, count_fmt, entry_fmt, pointer_fmt = False, "H", "HHI", "I"
        (ifd,) = struct.unpack_from(order + "I", data, 4)
    elif magic == 43 and struct.unpack_from(order + "HH", data, 4) == (8, 0):
        bigtiff, count_fmt, entry_fmt, pointer_fmt = True, "Q", "HHQ", "Q"
        (ifd,) = struct.unpack_from(order + "Q", data, 8)
    else:
        return None
    entry = struct.Struct(order + entry_fmt)  # tag, type, count; then the value or its offset
    pointer = struct.Struct(order + pointer_fmt)
    head, inline = entry.size, pointer.size
    (entries,) = struct.unpack_from(order + count_fmt, data, ifd)
    first = ifd + struct.calcsize(order + count_fmt)
    end = first + entries * (head + inline)
    (next_ifd,) = pointer.unpack_from(data, end)
    if next_ifd:
        return None
    reach = end + inline
    tags: dict[str, tuple[Any, ...]] = {}
    for pos in range(first, end, head + inline):
        code, kind, count = entry.unpack_from(data, pos)
        name = _VALUED.get(code)
        if name is None:
            if code in _DESCRIPTIVE:
                if code in GEO_TAGS:
                    tags["GeoTags"] = ()
                continue
            return None
        ascii_ok = (kind == 2) == (name == "Software")  # ASCII for Software, numbers elsewhere
        if name in tags or kind not in _TYPES or not ascii_ok:
            return None
        where = pos + head
        if count * _TYPE_BYTES[kind] > inline:
            (where,) = pointer.unpack_from(data, where)
            reach = max(reach, where + count * _TYPE_BYTES[kind])
        tags[name] = struct.unpack_from(f"{order}{count}{_TYPES[kind]}", data, where)
    return tags, bigtiff, order, reach


def parse_layout(data: bytes, size: int | None = None) -> StripLayout | None:
    """The layout of a TIFF file's bytes if it is eligible (module docstring), else None.

    Parameters
    ----------
    data : bytes
        The whole file, or its first bytes: then None unless the header lies within them.
    size : int, optional
        The file's size when ``data`` holds only its first bytes.

    Returns
    -------
    StripLayout or None
        Shape, bands, dtype and segment shape, as TiffSource would report them.

    Notes
    -----
    The layout depends only on the bytes the parse reads and on the file's
    size, so the last eligible one is remembered with those bytes: the files
    of a collection, written alike, then cost one comparison each.
    """
    size = len(data) if size is None else size
    global _last
    key = (size, MAX_DECODED_BYTES)
    if _last is not None:
        known_key, known_head, known = _last
        if key == known_key and data[: len(known_head)] == known_head:
            return known
    layout, reach = _parse_layout(data, size)
    if layout is not None:
        _last = (key, data[:reach], layout)
    return layout


#: The last eligible layout parsed: (file size, decoding limit), the bytes it depends on,
#: and the layout.
_last: tuple[tuple[int, int], bytes, StripLayout] | None = None


def _parse_layout(data: bytes, size: int) -> tuple[StripLayout | None, int]:
    """:func:`parse_layout` without the memory; also how far into ``data`` it read."""
    try:
        parsed = _first_ifd(data)
    except (struct.error, OverflowError):
        return None, 0
    if parsed is None:
        return None, 0
    tags, bigtiff, byteorder, reach = parsed

    def value(name: str, default: int) -> int:
        values = tags.get(name, (default,))
        return int(values[0]) if len(values) == 1 else -1  # -1 fails every check below

    length, width = value("ImageLength", 0), value("ImageWidth", 0)
    samples = value("SamplesPerPixel", 1)
    bits = set(tags.get("BitsPerSample", (1,)))
    formats = set(tags.get("SampleFormat", (1,)))
    if len(bits) != 1 or len(formats) != 1:
        return None, 0
    dtype_code = _DTYPES.get((formats.pop(), bits.pop()))
    photometric = value("Photometric", -1)
    compression = value("Compression", 1)
    predictor = value("Predictor", 1)
    if not (
        length > 0
        and width > 0
        and samples > 0
        and dtype_code is not None
        # tifffile reads IndicaLabs' 32-bit samples without SampleFormat as float
        and not (
            dtype_code == "u4"
            and "SampleFormat" not in tags
            and tags.get("Software", (b"",))[0].startswith(b"IndicaLabs")
        )
        and compression in _COMPRESSIONS
        and (photometric == 1 or (photometric == 2 and samples >= 3))
        and (samples == 1 or value("PlanarConfig", 1) == 1)
        and (predictor == 1 or (predictor in (2, 3) and compression in _PREDICTED))
        and value("FillOrder", 1) == 1
        and value("ImageDepth", 1) == 1
    ):
        return None, 0
    dtype = np.dtype(dtype_code)

    tile_tags = {"TileWidth", "TileLength", "TileOffsets", "TileByteCounts"}
    strip_tags = {"StripOffsets", "StripByteCounts"}
    if tile_tags <= tags.keys() and not strip_tags & tags.keys():
        tiled, kind = True, "Tile"
        block = (value("TileLength", 0), value("TileWidth", 0))
    elif strip_tags <= tags.keys() and not tile_tags & tags.keys():
        tiled, kind = False, "Strip"
        block = (min(value("RowsPerStrip", 2**32 - 1), length), width)
    else:
        return None, 0
    if block[0] <= 0 or block[1] <= 0:
        return None, 0
    pixel_bytes = samples * dtype.itemsize
    if max(length * width, block[0] * block[1]) * pixel_bytes > MAX_DECODED_BYTES:
        return None, 0
    offsets, counts = tags[f"{kind}Offsets"], tags[f"{kind}ByteCounts"]
    segments = -(-length // block[0]) * -(-width // block[1])
    if len(offsets) != segments or len(counts) != segments:
        return None, 0
    if not all(o > 0 and c > 0 and o + c <= size for o, c in zip(offsets, counts, strict=True)):
        return None, 0
    contiguous_at = None
    if compression == 1:
        # libtiff reads past a short uncompressed segment; TiffSource calls it corrupt
        needed = [block[0] * block[1] * pixel_bytes] * segments
        if not tiled:
            needed[-1] = (length - (segments - 1) * block[0]) * width * pixel_bytes
        if any(c < n for c, n in zip(counts, needed, strict=True)):
            return None, 0
        ends = [o + n for o, n in zip(offsets, needed, strict=True)]
        if not tiled and all(o == end for o, end in zip(offsets[1:], ends, strict=False)):
            contiguous_at = offsets[0]
    layout = StripLayout(
        shape=(length, width),
        bands=samples,
        dtype=dtype,
        block=block,
        tiled=tiled,
        compression=compression,
        bigtiff=bigtiff,
        contiguous_at=contiguous_at,
        byteorder=byteorder,
        photometric=photometric,
        alpha=tags.get("ExtraSamples", (0,))[-1] in (1, 2),
        geotagged="GeoTags" in tags,
    )
    return layout, reach
