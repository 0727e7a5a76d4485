"""PNG and JPEG headers: what the decoded pixels will be, read from a few bytes.

The description matches what imagecodecs' decoders (libpng, libjpeg-turbo)
return, which :class:`~tilewise.io._simple.SimpleSource` checks after decoding:

===========================  =====  ======  ===========================================
PNG colour type              bands  dtype   note
===========================  =====  ======  ===========================================
grey, 1/2/4-bit              1      uint8   scaled to 8 bits (x 255, x 85, x 17)
grey, 8/16-bit               1      uint8/uint16
RGB                          3      uint8/uint16
palette                      3      uint8   expanded to RGB
grey + alpha, RGBA           2, 4   uint8/uint16
with a tRNS chunk            +1             the transparent colour becomes an alpha band
===========================  =====  ======  ===========================================

JPEG: 8-bit greyscale (1 band) and colour (3 bands, decoded to RGB). CMYK and
YCCK JPEGs, and 12-bit ones, are refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tilewise.errors import CorruptInputError, InputError, TilewiseError, UnsupportedFormatError

__all__ = ["Header", "read_header"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type (grey, RGB, palette, grey + alpha, RGBA) -> (bands, allowed bit depths)
_PNG_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),
    2: (3, (8, 16)),
    3: (3, (1, 2, 4, 8)),
    4: (2, (8, 16)),
    6: (4, (8, 16)),
}
#: JPEG start-of-frame markers (not DHT C4, JPG C8, DAC CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


@dataclass(frozen=True, slots=True)
class Header:
    """What decoding will give."""

    format: str
    shape: tuple[int, int]
    bands: int
    dtype: str
    photometric: str
    #: Bits per sample in the file.
    bits: int
    alpha: bool
    conversion: str | None


def read_header(path: Path) -> Header:
    """Parse the header of a PNG or JPEG file.

    Raises
    ------
    CorruptInputError
        The header is truncated or inconsistent.
    UnsupportedFormatError
        A kind of PNG/JPEG tilewise does not read (CMYK, 12-bit JPEG).
    """
    try:
        with open(path, "rb") as fh:
            start = fh.read(8)
            if start == _PNG_SIGNATURE:
                return _png(path, fh)
            if start[:2] == b"\xff\xd8":
                fh.seek(2)
                return _jpeg(path, fh)
    except struct.error as err:
        raise CorruptInputError(f"{path}: truncated header, the file ends inside it") from err
    except TilewiseError:
        raise
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from err
    raise CorruptInputError(f"{path}: not a PNG or JPEG file (starts with {start!r})")


def _exactly(fh: BinaryIO, count: int) -> bytes:
    data = fh.read(count)
    if len(data) != count:
        raise struct.error("short read")
    return data


def _png(path: Path, fh: BinaryIO) -> Header:
    ihdr: tuple[int, ...] | None = None
    transparency = False
    while True:
        length, kind = struct.unpack(">I4s", _exactly(fh, 8))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", _exactly(fh, 13))
            fh.seek(length - 13 + 4, 1)
        elif kind in (b"IDAT", b"IEND"):
            break
        else:
            transparency |= kind == b"tRNS"
            fh.seek(length + 4, 1)
    if ihdr is None:
        raise CorruptInputError(f"{path}: damaged PNG: no IHDR chunk before the image data")
    width, height, bits, colour, *_ = ihdr
    if colour not in _PNG_TYPES or bits not in _PNG_TYPES[colour][1] or not width or not height:
        raise CorruptInputError(
            f"{path}: damaged PNG header: {width} x {height} pixels, colour type {colour}, "
            f"{bits}-bit"
        )
    bands = _PNG_TYPES[colour][0]
    notes = []
    if colour == 0 and bits < 8:
        notes.append(f"{bits}-bit grey scaled to 8 bits (value x {255 // (2**bits - 1)})")
    if colour == 3:
        notes.append("palette expanded to RGB")
    alpha = colour in (4, 6)
    if transparency and colour in (0, 2, 3):
        bands += 1
        alpha = True
        notes.append("tRNS transparency turned into an alpha band")
    return Header(
        format="png",
        shape=(height, width),
        bands=bands,
        dtype="uint16" if bits == 16 else "uint8",
        photometric="minisblack" if colour in (0, 4) else "rgb",
        bits=8 if colour == 3 else bits,
        alpha=alpha,
        conversion="; ".join(notes) or None,
    )


def _jpeg(path: Path, fh: BinaryIO) -> Header:
    while True:
        byte = _exactly(fh, 1)
        if byte != b"\xff":
            raise CorruptInputError(f"{path}: damaged JPEG: no marker where one should be")
        marker = _exactly(fh, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _exactly(fh, 1)[0]
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):
            raise CorruptInputError(f"{path}: damaged JPEG: no frame header before the image data")
        (length,) = struct.unpack(">H", _exactly(fh, 2))
        if marker in _SOF:
            precision, height, width, components = struct.unpack(">BHHB", _exactly(fh, 6))
            break
        fh.seek(length - 2, 1)
    if precision != 8:
        raise UnsupportedFormatError(
            f"{path}: a {precision}-bit JPEG; tilewise reads 8-bit JPEGs (convert it to a "
            "16-bit TIFF first)"
        )
    if components == 4:
        raise UnsupportedFormatError(
            f"{path}: a CMYK (or YCCK) JPEG; tilewise reads greyscale and RGB images and "
            "would pass its 4 samples on as RGB + alpha; convert it to RGB first"
        )
    if components not in (1, 3) or not width or not height:
        raise UnsupportedFormatError(
            f"{path}: a JPEG of {width} x {height} pixels with {components} components; "
            "tilewise reads greyscale (1) and colour (3) JPEGs with their size in the header"
        )
    return Header(
        format="jpeg",
        shape=(height, width),
        bands=components,
        dtype="uint8",
        photometric="minisblack" if components == 1 else "rgb",
        bits=8,
        alpha=False,
        conversion=None,
    )
