"""What a TIFF header says, checked: tag types, photometric interpretation, bit depth.

tifffile is lenient by design: a tag of the wrong type is passed on as text or
bytes, a tag it cannot read is dropped with a log line, and the pixels of a
CMYK, CIELab or MinIsWhite image come back as plain numbers. tilewise writes
grey or RGB outputs only, so it decides here, from the header, what the samples
mean, and either reads them truly (converting explicitly, said in ``tilewise
info``) or refuses the file before any work.

The rules:

- MinIsBlack and RGB are read as stored (so is YCbCr in JPEG-compressed files,
  which the JPEG codec decodes to RGB).
- MinIsWhite is inverted to MinIsBlack: ``max - value``, where ``max`` is the
  largest value of the bit depth (``not value`` for 1-bit images). Signed and
  floating-point MinIsWhite images have no such maximum and are refused.
- 1-bit samples are read as ``bool``; 2- and 4-bit samples are scaled to 8 bits
  (``value × 85`` and ``value × 17``, exact, as Pillow and libpng widen them), so
  an 8-bit output shows the same image. Other depths that are not whole bytes
  (3, 5, 6, 7, 12, 24 bits, ...) are refused.
- Every other interpretation (palette, CMYK/separated, CIELab, ICCLab, ITULab,
  YCbCr outside JPEG, LogL, LogLuv, CFA, ...) is refused: reading its samples
  as grey or RGB would change what the image means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from tilewise.errors import CorruptInputError, UnsupportedFormatError
from tilewise.io.base import Array, Source

__all__ = ["SamplesRefused", "cause", "check_tags", "meaning"]


class SamplesRefused(UnsupportedFormatError):
    """The header says what the samples mean, and no output would label it truly.

    A refusal, not a format tifffile lacks: no other reader (GDAL) gets the file.
    """


#: Tags that lay out the pixels; a TIFF stores each as SHORT, LONG or LONG8.
_STRUCTURAL = {
    256: "ImageWidth",
    257: "ImageLength",
    258: "BitsPerSample",
    259: "Compression",
    262: "PhotometricInterpretation",
    273: "StripOffsets",
    277: "SamplesPerPixel",
    278: "RowsPerStrip",
    279: "StripByteCounts",
    284: "PlanarConfiguration",
    322: "TileWidth",
    323: "TileLength",
    324: "TileOffsets",
    325: "TileByteCounts",
    339: "SampleFormat",
}
_INTEGER_TYPES = {3, 4, 13, 16, 18}  # SHORT, LONG, IFD, LONG8, IFD8
#: Compressions whose codec turns YCbCr into RGB (tifffile does so for these).
_JPEG = {6, 7, 33007, 34892}
_SCALED_BITS = {2: 85, 4: 17}


def cause(err: BaseException | None, notes: list[str]) -> str:
    """A reader's version of what went wrong: tifffile's log lines, then the exception.

    >>> cause(IndexError(0), ["<tifffile.TiffFile 'a.tif'> contains no pages"])
    'contains no pages'
    >>> cause(ValueError("invalid literal for int() with base 10: 'P'"), [])
    "ValueError: invalid literal for int() with base 10: 'P'"
    """
    lines = [_tidy(note) for note in notes]
    if err is not None and not lines:
        lines.append(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    return "; ".join(dict.fromkeys(lines)) or "no detail given"


def _tidy(note: str) -> str:
    note = re.sub(r"<TiffTag\.fromfile> raised \w+\('(.*)'\)$", r"\1", note)
    note = re.sub(r"<tifffile\.TiffTag (\d+) @\d+>", r"tag \1:", note)
    return re.sub(r"<tifffile\.\w+[^>]*>\s*", "", note).strip()


def check_tags(path: Path | str, page: Any, notes: list[str]) -> None:
    """Refuse a header whose layout tags are of the wrong type, or were dropped as unreadable."""
    for code, name in _STRUCTURAL.items():
        tag = page.tags.get(code)
        if tag is not None and int(tag.dtype) not in _INTEGER_TYPES:
            kind = getattr(tag.dtype, "name", str(tag.dtype))
            raise CorruptInputError(
                f"{path}: damaged TIFF header: tag {name} ({code}) has field type {kind} "
                f"({int(tag.dtype)}), where a TIFF stores SHORT or LONG; the file cannot be "
                "read as it was written"
            )
        dropped = [note for note in notes if f"TiffTag {code} " in note]
        if tag is None and dropped:
            raise CorruptInputError(
                f"{path}: damaged TIFF header: tag {name} ({code}) is unreadable "
                f"({_tidy(dropped[0])})"
            )


def meaning(source: Source, page: Any) -> Callable[[Array], Array] | None:
    """Set ``source``'s photometric, bit depth, alpha and conversion; return the conversion.

    Parameters
    ----------
    source : Source
        The TIFF source being opened; its ``dtype`` is what tifffile decodes to.
    page : tifffile.TiffPage
        Its first page.

    Returns
    -------
    callable or None
        Applied to every window read (in place), or None when samples are read as stored.

    Raises
    ------
    UnsupportedFormatError
        For the interpretations and bit depths the module docstring refuses.
    """
    path, dtype = source.path, source.dtype
    photometric = int(page.photometric) if page.photometric is not None else 1
    bits = int(page.bitspersample)
    name = _photometric_name(photometric)
    notes: list[str] = []
    steps: list[Callable[[Array], Array]] = []
    if photometric in (0, 1):
        source.photometric = "minisblack"
    elif photometric == 2 or (photometric == 6 and int(page.compression) in _JPEG):
        source.photometric = "rgb"
        if photometric == 6:
            notes.append("YCbCr decoded to RGB by the JPEG codec")
    else:
        raise SamplesRefused(
            f"{path}: photometric interpretation {name} ({photometric}): tilewise reads "
            "MinIsBlack, MinIsWhite and RGB images, and would pass these samples on as "
            "grey or RGB values they are not; convert the file to RGB or greyscale first"
        )
    top = None
    if dtype.kind == "b":
        source.bits_per_sample = 1
    elif bits in _SCALED_BITS and dtype == np.uint8:
        factor = _SCALED_BITS[bits]
        source.bits_per_sample = bits
        notes.append(f"{bits}-bit samples scaled to 8 bits (value x {factor})")
        steps.append(lambda a: np.multiply(a, factor, out=a))
        top = 255
    elif bits != dtype.itemsize * 8:
        raise SamplesRefused(
            f"{path}: {bits}-bit samples: tilewise reads samples of 1, 2, 4, 8, 16, 32 or "
            f"64 bits; convert the file to {8 if bits < 8 else 16 if bits < 16 else 32}-bit first"
        )
    elif dtype.kind == "u":
        top = int(np.iinfo(dtype).max)
    if photometric == 0:
        if dtype.kind == "b":
            notes.append("MinIsWhite inverted to MinIsBlack (not value)")
            steps.append(lambda a: np.logical_not(a, out=a))
        elif top is None:
            raise SamplesRefused(
                f"{path}: MinIsWhite image of {dtype.name} samples: tilewise inverts MinIsWhite "
                "to MinIsBlack only for unsigned integers; convert the file to MinIsBlack first"
            )
        else:
            white = top
            notes.append(f"MinIsWhite inverted to MinIsBlack ({white} - value)")
            steps.append(lambda a: np.subtract(white, a, out=a))
    extras = tuple(getattr(page, "extrasamples", ()) or ())
    source.alpha = bool(extras) and int(extras[-1]) in (1, 2)
    source.conversion = "; ".join(notes) or None
    if not steps:
        return None

    def convert(array: Array) -> Array:
        for step in steps:
            array = step(array)
        return array

    return convert


def _photometric_name(code: int) -> str:
    try:
        return tifffile.PHOTOMETRIC(code).name
    except ValueError:
        return "unknown"
