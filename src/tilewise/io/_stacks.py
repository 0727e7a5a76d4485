"""Stacks of planes are refused, never cut to their first plane.

tilewise reads one 2-D image per input: ``(rows, cols)`` or ``(rows, cols,
bands)``. A multi-page TIFF (a time-lapse, a z-stack, an ImageJ hyperstack, an
OME-TIFF), or an array whose leading axis is a stack of planes, holds more
than that; reading its first page, or taking its planes for bands, would be
silently wrong. Such inputs are refused, naming the layout. Reduced-resolution
pages (NewSubfileType bit 0: a COG's overviews and their masks) and SubIFDs
are copies of the image, not planes, and are left alone.

The refusal is an :class:`~tilewise.errors.InputError` rather than an
``UnsupportedFormatError``: the latter sends a TIFF on to GDAL, which would read page 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tilewise.errors import InputError

__all__ = ["MAX_BANDS_BY_SHAPE", "check_array_layout", "check_single_image"]

#: A last axis this short is always bands (grey+alpha, RGB, RGBA).
MAX_BANDS_BY_SHAPE = 4
#: Pages read to find a second full-resolution image (overviews come right after the first).
_MAX_PAGES_SEARCHED = 64

_SPLIT = "split it into one 2-D image per file (tifffile.imwrite(name, stack[i]) per plane)"


def check_single_image(path: Path | str, tif: Any) -> None:
    """Refuse a TIFF holding more than one full-resolution image (``tif``: a TiffFile)."""
    first = tif.pages.first
    for index in range(1, _MAX_PAGES_SEARCHED):
        try:
            page = tif.pages[index]
        except IndexError:
            return
        if getattr(page, "is_reduced", False) or getattr(page, "is_mask", False):
            continue
        raise InputError(
            f"{path}: a stack of images ({_describe(tif, first, page, index)}); tilewise reads "
            f"one 2-D image per file and does not read stacks yet (it would keep only page 0); "
            f"{_SPLIT}"
        )


def _describe(tif: Any, first: Any, page: Any, index: int) -> str:
    try:
        series = tif.series[0]
        kind = series.kind or "multi-page"
        facts = f"{kind} series of shape {tuple(series.shape)}, axes {series.axes}"
    except Exception:  # only the message's detail; the refusal stands
        facts = "several pages"
    if page.shape != first.shape:
        facts += f"; page {index} is {page.shape}, not a reduced copy of page 0 {first.shape}"
    return facts


def check_array_layout(path: Path | str, shape: tuple[int, ...]) -> None:
    """Refuse a 3-D array that looks like a stack of planes rather than ``(rows, cols, bands)``.

    The last axis is bands when it is at most :data:`MAX_BANDS_BY_SHAPE` long, or
    shorter than both others (a 12-band ``(512, 512, 12)`` scene); otherwise,
    ``(5, 64, 64)`` or ``(30, 511, 511)``, the first axis is more likely the stack.

    >>> check_array_layout(Path("a.npy"), (512, 512, 12))
    >>> check_array_layout(Path("a.npy"), (5, 64, 64))
    Traceback (most recent call last):
    ...
    tilewise.errors.InputError: a.npy: array of shape (5, 64, 64) looks like ...
    """
    if len(shape) != 3:
        return
    rows, cols, last = shape
    if last <= MAX_BANDS_BY_SHAPE or last < min(rows, cols):
        return
    raise InputError(
        f"{path}: array of shape {tuple(shape)} looks like a stack of {rows} planes of "
        f"{cols} x {last}, not (rows, cols, bands): tilewise reads bands last and does not "
        f"read stacks yet; for channels first, move them last (np.moveaxis(a, 0, -1)); "
        f"for a stack, {_SPLIT.replace('tifffile.imwrite', 'np.save')}"
    )
