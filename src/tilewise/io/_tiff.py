"""TIFF/BigTIFF: windowed reads of tiled or striped files; tiled compressed writes.

Reading decodes only the TIFF segments (tiles or strips) a window touches, with
tifffile's own decoders, and names the segment when one is corrupt.

Writing: workers encode their own TIFF tiles (the expensive part) and spool the
encoded bytes to files beside the output; the main process then streams those
bytes into one BigTIFF in tile order — a pure copy, so the single writer is
never the bottleneck. tilewise tiles are planned as whole multiples of the TIFF
tile, so every TIFF tile belongs to exactly one tilewise tile.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile

from tilewise.errors import (
    CorruptInputError,
    ImageTooLargeError,
    NoDecoderError,
    OutputError,
    TilewiseError,
    UnsupportedFormatError,
    UsageError,
)
from tilewise.geometry import Window
from tilewise.io._geotiff_tags import geotiff_tags
from tilewise.io._reading import DECODE_ERRORS, library_notes
from tilewise.io._segment_cache import SegmentCache
from tilewise.io._stacks import has_second_image, no_stack_options, tiff_stack
from tilewise.io._tiff_header import cause as _cause
from tilewise.io._tiff_header import check_tags as _check_tags
from tilewise.io._tiff_header import meaning as _meaning
from tilewise.io._tiff_stack import stack_writing
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, Source, SourceSpec, too_many_pixels
from tilewise.io.georef import Georef

__all__ = [
    "COMPRESSIONS",
    "TiffSink",
    "TiffSource",
    "assemble_tiff",
    "assembling_path",
    "tiff_block",
    "write_whole_tiff",
]

#: Largest single TIFF segment (strip or tile) tilewise will decode, in pixels.
MAX_SEGMENT_PIXELS = 1 << 28

#: Pages after the first searched for overviews (reduced-resolution copies).
_MAX_OVERVIEW_PAGES = 64
#: A stack's pages whose segment counts are checked on opening (the rest when read).
_PAGES_CHECKED = 64
#: ``--co COMPRESS=`` values and their TIFF compression codes.
COMPRESSIONS = {"NONE": 1, "LZW": 5, "DEFLATE": 8, "ZSTD": 50000}
_BLOCK_CHOICES = (512, 256, 128, 64, 32, 16)


class TiffSource(Source):
    """A TIFF or BigTIFF read by window (tiled or striped, contiguous or planar).

    A file with more than one full-resolution page is a stack (multi-page, ImageJ
    hyperstack, OME-TIFF), read one plane (page) at a time; reduced-resolution
    pages (overviews) and SubIFDs are not planes (see :mod:`tilewise.io._stacks`).

    What the samples mean is checked from the header (see :func:`_meaning`): MinIsBlack
    and RGB are read as stored; MinIsWhite is inverted and 2- and 4-bit samples are
    scaled to 8 bits, both said in :meth:`info`; other interpretations (CMYK, CIELab,
    palette, ...) and bit depths are refused, as no output would label them truly.
    """

    format_name = "tiff"
    reader = "tifffile"
    #: The file, or the object's URL (:class:`~tilewise.io._remote_tiff.RemoteTiffSource`).
    path: Path | str

    def __init__(self, spec: SourceSpec) -> None:
        self.path = self._location(spec)
        with library_notes("tifffile") as notes:
            try:
                self._open(spec, notes)
            except TilewiseError:
                self.close()
                raise
            except DECODE_ERRORS as err:
                self.close()
                raise CorruptInputError(
                    f"{self.path}: not a readable TIFF, its header is damaged "
                    f"({_cause(err, notes)})"
                ) from err

    def _open(self, spec: SourceSpec, notes: list[str]) -> None:
        self._tif = tifffile.TiffFile(self._file())
        if not self._tif.pages:
            raise CorruptInputError(
                f"{self.path}: not a readable TIFF: no image in it ({_cause(None, notes)})"
            )
        page = self._tif.pages.first
        _check_tags(self.path, page, notes)
        #: The page of each stored plane (one for a 2-D image).
        self._pages: tuple[Any, ...] = (page,)
        if has_second_image(self._tif):
            stack = tiff_stack(spec, self._tif)
            self.planes, self.stack_kind = stack.planes, stack.kind
            self._pages = stack.pages
            if stack.keyframe is not page:
                page = stack.keyframe
                _check_tags(self.path, page, notes)
        elif spec.stack_options:
            no_stack_options(spec, "one 2-D image")
        self._page = page
        self._fh = self._tif.filehandle
        self._filesize = self._fh.size
        separate, depth, length, width, contig = page.shaped
        if length < 1 or width < 1:
            raise CorruptInputError(
                f"{self.path}: damaged TIFF header: image of {length} x {width} pixels"
                + (f" ({_cause(None, notes)})" if notes else "")
            )
        if depth != 1:
            raise UnsupportedFormatError(f"{self.path}: volumetric (depth {depth}) TIFF pages")
        if page.dtype is None and self.planes is not None:  # GDAL would read page 0 only
            raise UnsupportedFormatError(
                f"{self.path}: a stack of pages with a sample format tilewise has no type for "
                f"({page.bitspersample}-bit, SampleFormat {page.sampleformat})"
            )
        if page.dtype is None:
            raise NoDecoderError(
                f"{self.path}: unsupported sample format "
                f"({page.bitspersample}-bit, SampleFormat {page.sampleformat})"
            )
        self.shape = (int(length), int(width))
        self.bands = int(separate * contig)
        self.dtype = np.dtype(page.dtype)
        self._separate = int(separate)
        self._convert = _meaning(self, page)
        if self.shape[0] * self.shape[1] > spec.max_pixels:
            raise too_many_pixels(self.path, self.shape, spec.max_pixels)
        if page.is_tiled:
            self._block = (int(page.tilelength), int(page.tilewidth))
        else:
            self._block = (min(int(page.rowsperstrip or length), int(length)), int(width))
        if self._block[0] < 1 or self._block[1] < 1:
            raise CorruptInputError(
                f"{self.path}: damaged TIFF header: {'tiles' if page.is_tiled else 'strips'} "
                f"of {self._block[0]} x {self._block[1]} pixels"
            )
        if self._block[0] * self._block[1] > MAX_SEGMENT_PIXELS:
            raise ImageTooLargeError(
                f"{self.path}: one {'tile' if page.is_tiled else 'strip'} holds "
                f"{self._block[0]} x {self._block[1]} pixels, more than tilewise decodes at "
                f"once ({MAX_SEGMENT_PIXELS:,}); rewrite the file tiled, e.g. with "
                "'tilewise run IN OUT.tif --op invert --op invert'"
            )
        self._across = -(-self.shape[1] // self._block[1])
        self._per_plane = -(-self.shape[0] // self._block[0]) * self._across
        expected = self._per_plane * self._separate
        for number, each in enumerate(self._pages):
            if len(each.dataoffsets) < expected:
                where = f"page {each.index}" if len(self._pages) > 1 else "header"
                raise CorruptInputError(
                    f"{self.path}: {where} lists {len(each.dataoffsets)} segments, "
                    f"the image needs {expected}" + (f" ({_cause(None, notes)})" if notes else "")
                )
            if number >= _PAGES_CHECKED:  # a stack's frames share their first page's layout
                break
        self._decode = page.decode
        #: Segments of one stored plane: its cache keys are ``plane * this + segment``.
        self._segments_per_page = expected
        row_bytes = (
            self._across * self._block[0] * self._block[1] * self.bands * self.dtype.itemsize
        )
        self._cache = SegmentCache(self._block[0], row_bytes)
        self._compression = tifffile.COMPRESSION(page.compression).name

    def _location(self, spec: SourceSpec) -> Path | str:
        """What messages name: the path (a remote source: its URL)."""
        return Path(spec.path)

    def _file(self) -> Any:
        """What tifffile opens: the path (a remote source gives a file over byte ranges)."""
        return self.path

    def _bytes(self, index: int, offset: int, count: int) -> bytes:
        """The stored bytes of segment ``index``."""
        self._fh.seek(offset)
        return bytes(self._fh.read(count))

    @property
    def chunks(self) -> tuple[int, int]:
        return self._block

    @property
    def compression(self) -> str:
        return self._compression

    @property
    def georef(self) -> Georef | None:
        from tilewise.io._tiff_ifd import GEO_TAGS

        if not any(code in self._page.tags for code in GEO_TAGS):
            return None
        from tilewise.io._raster import tiff_georef

        return tiff_georef(Path(self.path))

    @property
    def overviews(self) -> list[int]:
        width = self.shape[1]
        return [  # a COG's overviews (and their masks) follow the first page
            round(width / page.imagewidth)
            for page in self._tif.pages[1:_MAX_OVERVIEW_PAGES]
            if isinstance(page, tifffile.TiffPage) and page.is_reduced and page.imagewidth
        ]

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update(
            layout="tiled" if self._page.is_tiled else "striped",
            bigtiff=self._tif.is_bigtiff,
            planar="separate" if self._separate > 1 else "contig",
            pages=len(self._tif.pages),
        )
        return info

    def _segment(
        self, page: Any, key: int, index: int, br: int, bc: int, rows: tuple[int, int], whole: bool
    ) -> tuple[Array | None, int]:
        """Rows ``rows`` of a segment, as ``(rows, cols, samples)`` from its row returned second."""
        kept = self._cache.get(key, rows[0], rows[1], whole)
        if kept is not None:
            return kept
        segment = self._decode_segment(page, index, br, bc)
        if segment is not None:
            segment = segment.reshape(segment.shape[-3:])
        self._cache.put(key, segment, whole)
        return segment, 0

    def _decode_segment(
        self, page: Any, index: int, block_row: int, block_col: int
    ) -> Array | None:
        if index >= len(page.dataoffsets):
            raise CorruptInputError(
                f"{self.path}: page {page.index} lists {len(page.dataoffsets)} segments, "
                f"the image needs {self._segments_per_page}"
            )
        offset = int(page.dataoffsets[index])
        count = int(page.databytecounts[index])
        where = (
            f"{'tile' if self._page.is_tiled else 'strip'} {index} "
            f"(rows {block_row * self._block[0]}:, cols {block_col * self._block[1]}:)"
        )
        if page is not self._page:
            where = f"page {page.index} {where}"
        if count == 0 or offset == 0:
            return None
        if offset + count > self._filesize:
            raise CorruptInputError(
                f"{self.path}: {where} lies past the end of the file "
                f"(needs {offset + count:,} bytes, file has {self._filesize:,}): truncated"
            )
        data = self._bytes(index, offset, count)
        try:
            with library_notes("tifffile") as notes:
                decode = self._decode if page is self._page else page.decode
                segment, _, _ = decode(data, index, jpegtables=page.jpegtables)
        except NotImplementedError as err:
            raise UnsupportedFormatError(f"{self.path}: cannot decode {where}: {err}") from err
        except DECODE_ERRORS as err:
            said = f" (tifffile: {_cause(None, notes)})" if notes else ""
            raise CorruptInputError(f"{self.path}: corrupt {where}: {err}{said}") from err
        return segment

    def read(self, window: Window, plane: int | None = None) -> Array:
        if self.planes is None:
            page, first = self._page, 0
        else:
            stored = self.planes.stored_flat(plane or 0)
            page, first = self._pages[stored], stored * self._segments_per_page
        out_shape = window.shape if self.bands == 1 else (*window.shape, self.bands)
        out = np.empty(out_shape, dtype=self.dtype)
        bh, bw = self._block
        rows = range(window.row // bh, (window.stop_row - 1) // bh + 1)
        cols = range(window.col // bw, (window.stop_col - 1) // bw + 1)
        contig = self.bands // self._separate
        for sample in range(self._separate):
            for br in rows:
                for bc in cols:
                    index = sample * self._per_plane + br * self._across + bc
                    r0, c0 = br * bh, bc * bw
                    top, left = max(window.row, r0), max(window.col, c0)
                    bottom = min(window.stop_row, r0 + bh, self.shape[0])
                    right = min(window.stop_col, c0 + bw, self.shape[1])
                    whole = (
                        top == r0
                        and left == c0
                        and bottom == min(r0 + bh, self.shape[0])
                        and right == min(c0 + bw, self.shape[1])
                    )
                    segment, first_row = self._segment(
                        page, first + index, index, br, bc, (top - r0, bottom - r0), whole
                    )
                    dst = (
                        slice(top - window.row, bottom - window.row),
                        slice(left - window.col, right - window.col),
                    )
                    if segment is None:
                        src: Any = 0  # a sparse TIFF's empty segment
                    else:
                        at = r0 + first_row
                        src = segment[top - at : bottom - at, left - c0 : right - c0]
                    if self.bands == 1:
                        out[dst] = src if segment is None else src[..., 0]
                    elif self._separate > 1:
                        out[(*dst, sample)] = src if segment is None else src[..., 0]
                    else:
                        out[(*dst, slice(0, contig))] = src
        return out if self._convert is None else self._convert(out)

    def close(self) -> None:
        tif = getattr(self, "_tif", None)  # None when the file did not open
        if tif is not None:
            tif.close()


#: The tilewise tile side from which TIFF tiles are at least this large by default.
MIN_DEFAULT_BLOCK = 256


def _given_block(options: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """``(height, width)`` of the TIFF tile asked for with BLOCKSIZE/BLOCKYSIZE/BLOCKXSIZE."""
    options = options or {}
    side = options.get("BLOCKSIZE")
    return options.get("BLOCKYSIZE", side), options.get("BLOCKXSIZE", side)


def tiff_block(
    tile_shape: tuple[int, int],
    image_shape: tuple[int, int],
    options: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """The TIFF tile size for an output whose tilewise tiles are ``tile_shape``.

    A size given by ``--co BLOCKSIZE``/``BLOCKXSIZE``/``BLOCKYSIZE`` is used as
    given (:func:`align_tile_for_tiff` made the tiles multiples of it). Otherwise
    each dimension is the largest of 512, 256, ..., 16 that divides the tilewise
    tile (512 when the tile spans the whole image in that dimension); tiles of
    256 pixels or more are aligned to 256, so their TIFF tiles are 256 or 512.

    >>> tiff_block((1024, 1024), (5000, 5000))
    (512, 512)
    >>> tiff_block((48, 8000), (100, 8000))
    (16, 512)
    >>> tiff_block((1024, 1024), (5000, 5000), {"BLOCKSIZE": 256})
    (256, 256)
    """
    block = []
    for tile, size, given in zip(tile_shape, image_shape, _given_block(options), strict=True):
        if given is not None:
            if tile < size and tile % given:
                raise UsageError(f"tiles of {tile} px are not multiples of the TIFF tile {given}")
            block.append(int(given))
            continue
        if tile >= size:
            block.append(512)
            continue
        for choice in _BLOCK_CHOICES:
            if tile % choice == 0:
                block.append(choice)
                break
        else:
            raise UsageError(f"TIFF output needs tile sizes that are multiples of 16, got {tile}")
    return (block[0], block[1])


def align_tile_for_tiff(
    tile_shape: tuple[int, int],
    image_shape: tuple[int, int],
    options: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """Round each tile dimension up to a multiple of the TIFF tile, so each TIFF tile has one owner.

    The TIFF tile is the one given (``BLOCKSIZE``...), else 256 for tiles of 256
    pixels or more (a 1000-px tile becomes 1024, written as 512-px TIFF tiles; never
    16-px TIFF tiles because the tile size is odd), else 16.

    >>> align_tile_for_tiff((1000, 777), (5000, 5000))
    (1024, 1024)
    >>> align_tile_for_tiff((37, 5000), (100, 5000))
    (48, 5000)
    """
    aligned = []
    for tile, size, given in zip(tile_shape, image_shape, _given_block(options), strict=True):
        step = given or (MIN_DEFAULT_BLOCK if tile >= MIN_DEFAULT_BLOCK else 16)
        aligned.append(tile if tile >= size else -(-tile // step) * step)
    return (aligned[0], aligned[1])


def write_whole_tiff(
    fh: Any, array: Array, options: dict[str, Any], georef: Georef | None = None
) -> None:
    """Write ``array`` as a classic, striped TIFF (a whole image; see :mod:`tilewise.io._whole`).

    With ``georef``, a GeoTIFF (see :mod:`tilewise.io._geotiff_tags`).
    """
    compress = options["COMPRESS"]
    args: dict[str, Any] = {}
    if compress != "NONE":
        args["compression"] = COMPRESSIONS[compress]
        if "LEVEL" in options:
            args["compressionargs"] = {"level": options["LEVEL"]}
        if options.get("PREDICTOR", 1) == 2 and array.dtype.kind in "iu":
            args["predictor"] = 2
    bands = 1 if array.ndim == 2 else array.shape[2]
    photometric = "rgb" if bands in (3, 4) else "minisblack"
    extrasamples: tuple[int, ...] | None = (2,) if bands == 4 else None
    if georef is not None:
        geo = geotiff_tags(georef, array.dtype.name)
        photometric, extrasamples = geo.photometric, geo.extrasamples
        args["extratags"] = geo.extratags
    tifffile.imwrite(
        fh,
        array,
        photometric=photometric,
        extrasamples=extrasamples,
        metadata=None,
        software="tilewise",
        **args,
    )


def _tiles_per_plane(spec: SinkSpec) -> int:
    bh, bw = spec.chunks
    return -(-spec.shape[0] // bh) * -(-spec.shape[1] // bw)


def _needs_bigtiff(spec: SinkSpec) -> bool:
    """Whether the padded tiles of every plane pass what a classic TIFF addresses."""
    bh, bw = spec.chunks
    padded = _tiles_per_plane(spec) * bh * bw * spec.plane_count
    return padded * spec.bands * np.dtype(spec.dtype).itemsize > 2**32 - 2**25


def _bigtiff(spec: SinkSpec) -> bool:
    """Whether to write a BigTIFF: BIGTIFF=YES, or IF_NEEDED and the padded tiles pass 4 GiB."""
    choice = spec.options.get("BIGTIFF", "YES")
    if choice != "IF_NEEDED":
        return bool(choice == "YES")
    return _needs_bigtiff(spec)


class TiffSink(Sink):
    """Tiled, compressed BigTIFF output, encoded by the workers, assembled by the main process."""

    concurrent_writes = True  # workers write separate spool files

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        self._block = spec.chunks
        code = COMPRESSIONS[spec.options["COMPRESS"]]
        self._encode: Any = None if code == 1 else tifffile.TIFF.COMPRESSORS[code]
        self._level = spec.options.get("LEVEL")
        self._predictor = spec.options.get("PREDICTOR", 1) == 2
        #: TIFF tiles in one plane (page): plane ``p``'s tiles are numbered from ``p`` times this.
        self._per_plane = _tiles_per_plane(spec)

    @classmethod
    def check_options(cls, spec: SinkSpec) -> None:
        """Refuse creation options the output's pixels cannot take (before any work)."""
        if spec.options.get("PREDICTOR", 1) == 2 and np.dtype(spec.dtype).kind not in "iu":
            raise UsageError(
                f"{spec.path}: --co PREDICTOR=2 (horizontal differencing) is for integer "
                f"pixels, the output is {spec.dtype}; leave PREDICTOR out"
            )

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        cls.check_options(spec)
        spec.partial.mkdir(parents=True, exist_ok=True)

    def _segments(self, window: Window, array: Array) -> Iterator[tuple[int, bytes]]:
        bh, bw = self._block
        across = -(-self.spec.shape[1] // bw)
        full = (bh, bw) if array.ndim == 2 else (bh, bw, array.shape[2])
        for r in range(0, window.height, bh):
            for c in range(0, window.width, bw):
                block = array[r : r + bh, c : c + bw]
                if block.shape != full:
                    padded = np.zeros(full, dtype=array.dtype)
                    padded[: block.shape[0], : block.shape[1]] = block
                    block = padded
                block = np.ascontiguousarray(block)
                if self._predictor:  # differences along each row, per sample (TIFF Predictor 2)
                    block = imagecodecs.delta_encode(block, axis=1)
                if self._encode is None:
                    data = block.tobytes()
                elif self._level is None:
                    data = self._encode(block)
                else:
                    data = self._encode(block, level=self._level)
                index = ((window.row + r) // bh) * across + (window.col + c) // bw
                yield index, bytes(data)

    def _spool_name(self, tile_index: int) -> str:
        """The file a tile's encoded TIFF tiles are spooled to, in the partial output."""
        return f"tile-{tile_index:07d}.seg"

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        from tilewise.io._checksum import crc32c  # preloaded by the run's workers

        if window.row % self._block[0] or window.col % self._block[1]:
            raise OutputError(f"{window} is not aligned to the TIFF tile {self._block}")
        first = (plane or 0) * self._per_plane
        path = self.spec.partial / self._spool_name(tile_index)
        # Two attempts of a tile may overlap, even on different hosts sharing the disk.
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        segments: list[list[int]] = []
        offset = 0
        try:
            with open(tmp, "wb") as fh:
                for index, data in self._segments(window, array):
                    fh.write(data)
                    segments.append([first + index, offset, len(data), crc32c(data)])
                    offset += len(data)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"{path}: cannot write: {err.strerror or err}") from err
        return {"file": path.name, "size": offset, "segments": segments}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        from tilewise.io._checksum import crc32c  # a resumed run's check, in the main process

        path = self.spec.partial / str(receipt["file"])
        if not path.is_file() or path.stat().st_size != receipt["size"]:
            return False
        try:
            data = memoryview(path.read_bytes())  # one tile's encoded bytes
        except OSError:
            return False
        return all(  # a segment journaled before receipts had checksums has no CRC32C
            len(segment) < 4 or crc32c(data[segment[1] : segment[1] + segment[2]]) == segment[3]
            for segment in receipt["segments"]
        )

    @classmethod
    def assemble(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Write the final TIFF as ``.NAME.assembling``, copying the spooled segments in order."""
        final = Path(spec.path)
        tmp = assembling_path(final)
        try:
            with _SpoolFiles(spec.partial) as spools:
                assemble_tiff(spec, receipts, tmp, spools.fetch)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, TilewiseError):
                raise
            raise OutputError(f"{final}: cannot write the TIFF: {err}") from err

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Rename the assembled TIFF to its final name; remove the spooled segments."""
        final = Path(spec.path)
        try:
            os.replace(assembling_path(final), final)
        except OSError as err:
            raise OutputError(
                f"{final}: cannot move the finished output into place: {err}"
            ) from err
        shutil.rmtree(spec.partial, ignore_errors=True)


class _SpoolFiles:
    """The spooled tiles' files, kept open while the TIFF is assembled (a few dozen at once).

    A row of TIFF tiles takes one tile's segments from each tilewise tile across the
    image, so consecutive segments come from different files: opening a file per
    segment cost a system call or three each.
    """

    _MOST_OPEN = 64

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._open: OrderedDict[str, int] = OrderedDict()

    def __enter__(self) -> _SpoolFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._open:
            os.close(self._open.popitem()[1])

    def fetch(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of spool file ``name``."""
        fd = self._open.get(name)
        if fd is None:
            if len(self._open) >= self._MOST_OPEN:
                os.close(self._open.popitem(last=False)[1])
            fd = os.open(self._folder / name, os.O_RDONLY)
            self._open[name] = fd
        else:
            self._open.move_to_end(name)
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise OutputError(
                f"{self._folder / name}: ends before the encoded tile at {offset:,} "
                f"({len(data):,} of {length:,} bytes); run again with --resume to redo it"
            )
        return data


def assembling_path(final: Path) -> Path:
    """Where the final TIFF is built before it is renamed: ``.NAME.assembling``."""
    return final.with_name(f".{final.name}.assembling")


def assemble_tiff(
    spec: SinkSpec,
    receipts: Mapping[int, Receipt],
    tmp: Path,
    fetch: Callable[[str, int, int], bytes],
) -> None:
    """Write the TIFF of ``spec`` to ``tmp`` from the workers' encoded tiles, in tile order.

    ``fetch(file, offset, length)`` returns the bytes of one TIFF tile from the
    spool named by a receipt (a local file, or an object).
    """
    where: dict[int, tuple[str, int, int]] = {}
    for receipt in receipts.values():
        for index, offset, length, *_ in receipt["segments"]:
            where[index] = (receipt["file"], offset, length)
    bh, bw = spec.chunks
    count = _tiles_per_plane(spec) * spec.plane_count
    missing = [i for i in range(count) if i not in where]
    if missing:
        raise OutputError(f"{spec.path}: {len(missing)} TIFF tiles were never written")

    def segments() -> Iterator[bytes]:
        for index in range(count):
            yield fetch(*where[index])

    compress = spec.options["COMPRESS"]
    bands = spec.bands
    photometric = "rgb" if bands in (3, 4) else "minisblack"
    extrasamples: tuple[int, ...] = (2,)
    extratags: tuple[Any, ...] = ()
    if spec.georef is not None:
        geo = geotiff_tags(spec.georef, spec.dtype)
        photometric, extrasamples, extratags = geo.photometric, geo.extrasamples, geo.extratags
    stack = stack_writing(spec, _bigtiff(spec), _needs_bigtiff(spec))
    try:
        with tifffile.TiffWriter(tmp, **stack.file) as writer:
            writer.write(
                segments(),
                shape=spec.array_shape,
                dtype=spec.dtype,
                tile=(bh, bw),
                compression=None if compress == "NONE" else COMPRESSIONS[compress],
                photometric=photometric,
                extrasamples=extrasamples if bands == 4 or spec.georef else None,
                planarconfig=stack.planarconfig,
                software="tilewise",
                metadata=stack.metadata,
                extratags=extratags,
                predictor=2 if spec.options.get("PREDICTOR", 1) == 2 else None,
            )
    except ValueError as err:  # tifffile: the data passed what a classic TIFF addresses
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"{spec.path}: too large for a classic TIFF with --co BIGTIFF=NO ({err}); "
            "use BIGTIFF=YES or IF_NEEDED, then --resume"
        ) from err
