"""Stacks of planes: which axes of an input are planes, rows, columns and bands.

tilewise processes 2-D images: ``(rows, cols)`` or ``(rows, cols, bands)``. A
stack holds more than one: a multi-page TIFF (a time-lapse, a z-stack), an
ImageJ hyperstack or an OME-TIFF (axes such as ``TZCYX`` in their metadata), a
N-D ``.npy`` or Zarr array. Its *leading axes* (everything but rows, columns
and bands) are planes; each plane is tiled and processed as a 2-D image, and
the output keeps the leading axes.

The rules, decided here for every format:

- **TIFF**: the axes are tifffile's for the file's first series
  (``series[0].axes``: ImageJ's and OME's metadata, tifffile's own, or ``I``
  for plain pages). A page's samples (``S``: RGB) are bands. Reduced-resolution
  pages (NewSubfileType bit 0: a COG's overviews and their masks) and SubIFDs
  are copies of the image, not planes, and are left out. A file holding more
  than one full-resolution image outside its first series, a series whose
  pages do not hold one plane each (volumetric pages, missing OME planes,
  ImageJ data past the pages listed), or pages that differ in shape, type or
  layout, is refused: never cut to page 0.
- **Arrays** (``.npy``, Zarr): ``axes`` names every axis (``"CYX"``,
  ``"TZYXS"``); without it, the last two axes are rows and columns, unless the
  last is bands — at most :data:`MAX_BANDS_BY_SHAPE` long, or shorter than both
  axes before it (a 12-band ``(512, 512, 12)`` scene) — and the axes before are
  planes named ``Q`` (tifffile's letter for an unnamed axis).
- **Channels**: a ``C`` axis is planes, like ``Z`` or ``T``: each channel is
  processed on its own, which is what every op acting per band does, and the
  output keeps the axis where it was. ``channel_axis`` (scikit-image's
  spelling: the axis number, negative from the end) makes an array's axis
  bands instead, for ops that combine bands (``grayscale``, ``bandmath``);
  the output then has them last, as bands.
- ``planes`` selects a range of the first leading axis; ``page`` one plane
  (numbered in C order over the leading axes), read as a 2-D image.

A layout that fits none of these is refused before work with an
:class:`~tilewise.errors.InputError` naming it (exit 2), not an
``UnsupportedFormatError``, which would send a TIFF on to GDAL, which reads page 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tilewise.errors import GeometryError, InputError, UsageError
from tilewise.geometry import Window
from tilewise.geometry.planes import AXIS_LETTERS, Planes
from tilewise.io.base import SourceSpec

__all__ = [
    "MAX_BANDS_BY_SHAPE",
    "ArrayLayout",
    "TiffStack",
    "array_layout",
    "has_second_image",
    "no_stack_options",
    "tiff_stack",
]

#: A last axis this short is always bands (grey+alpha, RGB, RGBA).
MAX_BANDS_BY_SHAPE = 4
#: Pages read to find a second full-resolution image (overviews come right after the first).
_MAX_PAGES_SEARCHED = 64


def _is_copy(page: Any) -> bool:
    """Whether a page is a reduced-resolution copy or a mask, not an image of its own."""
    return bool(getattr(page, "is_reduced", False) or getattr(page, "is_mask", False))


def has_second_image(tif: Any) -> bool:
    """Whether a TIFF (``tif``: a TiffFile) holds a full-resolution page after its first."""
    for index in range(1, _MAX_PAGES_SEARCHED):
        try:
            page = tif.pages[index]
        except IndexError:
            return False
        if not _is_copy(page):
            return True
    return True  # 63 overview pages and more: leave it to the stack's own checks


def no_stack_options(spec: SourceSpec, what: str) -> None:
    """Refuse stack options for an input that is one 2-D image (``what`` names it)."""
    given = spec.stack_options
    if given:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{spec.path}: {names} given, but the input is {what}, not a stack")


def _planes(spec: SourceSpec, stored: tuple[int, ...], axes: str) -> Planes:
    try:
        return Planes.selected(stored, axes, spec.planes, spec.page)
    except GeometryError as err:
        raise UsageError(f"{spec.path}: {err}") from None


def _check_axes(path: Path, axes: str, ndim: int) -> str:
    """``--axes`` as given, checked: one letter per axis, Y then X, letters tifffile knows."""
    axes = axes.strip().upper()
    known = AXIS_LETTERS + "YX"
    if len(axes) != ndim or len(set(axes)) != ndim or any(a not in known for a in axes):
        raise UsageError(
            f"{path}: --axes {axes!r} must name each of the {ndim} axes once with "
            f"letters from {known} (e.g. {'TZC'[: max(0, ndim - 2)]}YX)"
        )
    if "Y" not in axes or "X" not in axes or axes.index("Y") > axes.index("X"):
        raise UsageError(f"{path}: --axes {axes!r} must hold Y (rows) before X (columns)")
    return axes


@dataclass(frozen=True, slots=True)
class ArrayLayout:
    """Which axes of an N-D array are rows, columns, bands and planes.

    ``planes`` is None for a 2-D image (with or without bands last).
    """

    ndim: int
    rows: int
    cols: int
    band: int | None
    plane_axes: tuple[int, ...]
    planes: Planes | None

    @property
    def simple(self) -> bool:
        """Rows, columns (and bands) in that order, no planes: read with the window's slices."""
        return self.planes is None and (self.rows, self.cols) == (0, 1)

    def index(self, window: Window, plane: int | None) -> tuple[Any, ...]:
        """The array index of ``window`` in plane ``plane``."""
        index: list[Any] = [slice(None)] * self.ndim
        index[self.rows] = slice(window.row, window.stop_row)
        index[self.cols] = slice(window.col, window.stop_col)
        if self.planes is not None:
            coords = self.planes.stored_index(plane or 0)
            for axis, coord in zip(self.plane_axes, coords, strict=True):
                index[axis] = coord
        return tuple(index)

    @property
    def band_at(self) -> int | None:
        """Where bands are in a window read with :meth:`index`, when not last (they are
        moved last), else None."""
        if self.band is None or self.band > self.cols:
            return None
        return sorted((self.rows, self.cols, self.band)).index(self.band)


def array_layout(spec: SourceSpec, shape: tuple[int, ...]) -> ArrayLayout:
    """The layout of an array of ``shape`` (module docstring), or a refusal naming it."""
    path = Path(spec.path)
    ndim = len(shape)
    if ndim < 2:
        raise InputError(f"{path}: a {ndim}-D array of shape {shape} is not an image")
    band: int | None = None
    if spec.channel_axis is not None:
        if not -ndim <= spec.channel_axis < ndim:
            raise UsageError(
                f"{path}: --channel-axis {spec.channel_axis} is not an axis of a {ndim}-D array"
            )
        band = spec.channel_axis % ndim
    if spec.axes is not None:
        axes = _check_axes(path, spec.axes, ndim)
        if "S" in axes:
            if band is not None and band != axes.index("S"):
                raise UsageError(
                    f"{path}: --axes {axes} has bands (S) at axis {axes.index('S')} and "
                    f"--channel-axis names axis {band}; one axis can be bands"
                )
            band = axes.index("S")
        rows, cols = axes.index("Y"), axes.index("X")
        if band in (rows, cols):
            raise UsageError(f"{path}: --channel-axis {band} is the rows or columns axis")
    else:
        others = [axis for axis in range(ndim) if axis != band]
        if len(others) < 2:
            raise UsageError(f"{path}: a {ndim}-D array has no rows and columns besides bands")
        if band is None and ndim >= 3 and _bands_last(shape):
            band = ndim - 1
            others = others[:-1]
        rows, cols = others[-2], others[-1]
        axes = "".join(
            "Y" if a == rows else "X" if a == cols else "S" if a == band else "Q"
            for a in range(ndim)
        )
    plane_axes = tuple(a for a in range(ndim) if a not in (rows, cols, band))
    planes = None
    if plane_axes:
        stored = tuple(int(shape[a]) for a in plane_axes)
        planes = _planes(spec, stored, "".join(axes[a] for a in plane_axes))
    elif spec.planes is not None or spec.page is not None:
        no_stack_options(
            SourceSpec(spec.path, planes=spec.planes, page=spec.page), f"array {shape}"
        )
    return ArrayLayout(ndim, rows, cols, band, plane_axes, planes)


def _bands_last(shape: tuple[int, ...]) -> bool:
    """Whether an array's last axis is bands by its length (module docstring).

    >>> _bands_last((512, 512, 12)), _bands_last((5, 64, 64)), _bands_last((9, 64, 64, 3))
    (True, False, True)
    """
    last = shape[-1]
    return last <= MAX_BANDS_BY_SHAPE or last < min(shape[-3], shape[-2])


@dataclass(frozen=True, slots=True)
class TiffStack:
    """The planes of a multi-page TIFF: the page holding each stored plane, and what named them.

    ``pages[i]`` is the TiffPage (or TiffFrame) of stored plane ``i`` (C order
    over the leading axes); ``keyframe`` the page whose tags they all share.
    """

    planes: Planes
    kind: str
    pages: tuple[Any, ...]
    keyframe: Any


def tiff_stack(spec: SourceSpec, tif: Any) -> TiffStack:
    """The stack in a TIFF holding more than one full-resolution page (module docstring)."""
    path = Path(spec.path)
    if spec.channel_axis is not None:
        raise UsageError(
            f"{path}: --channel-axis applies to .npy and Zarr arrays; a TIFF's channels (C) "
            "are processed as planes, and the samples of its pages (S, e.g. RGB) as bands"
        )
    try:
        series = list(tif.series)
    except Exception as err:  # tifffile could not make sense of the pages
        raise InputError(
            f"{path}: a multi-page TIFF whose pages tifffile cannot order: {err}"
        ) from err
    images = [s for s in series if not _is_copy(s.keyframe)]
    if len(images) != 1:
        shapes = ", ".join(f"{tuple(s.shape)} {s.axes}" for s in images[:4])
        raise InputError(
            f"{path}: holds {len(images)} images ({shapes}{', ...' if len(images) > 4 else ''}); "
            "tilewise reads one image or one stack per file: write each to its own file"
        )
    first = images[0]
    keyframe = first.keyframe
    page_axes = keyframe.axes
    axes, shape = first.axes, tuple(int(n) for n in first.shape)
    if not axes.endswith(page_axes) or len(axes) == len(page_axes):
        raise InputError(
            f"{path}: a {first.kind} series of shape {shape}, axes {axes}, whose pages "
            f"({keyframe.shape}, axes {page_axes}) are not its planes; tilewise does not read it"
        )
    leading, stored = axes[: -len(page_axes)], shape[: -len(page_axes)]
    pages = tuple(first.pages)
    if len(pages) != math.prod(stored) or any(p is None for p in pages):
        missing = sum(p is None for p in pages)
        raise InputError(
            f"{path}: a {first.kind} series of shape {shape}, axes {axes}, holds "
            f"{len(pages) - missing} pages for its {math.prod(stored)} planes; tilewise reads "
            "stacks stored one page per plane"
        )
    if spec.axes is not None:
        leading = _renamed(path, spec.axes, axes, page_axes)
    for index, page in enumerate(pages):
        if page.keyframe is not keyframe and page.hash != keyframe.hash:
            raise InputError(
                f"{path}: page {index} is {page.shape} {page.dtype}, not like page 0 "
                f"{keyframe.shape} {keyframe.dtype}; tilewise reads stacks of like planes"
            )
    kind = first.kind if first.kind in ("imagej", "ome") else "tiff"
    return TiffStack(_planes(spec, stored, leading), kind, pages, keyframe)


def _renamed(path: Path, given: str, axes: str, page_axes: str) -> str:
    """The leading axes ``--axes`` gives a TIFF stack: the axes of its pages must stay."""
    given = _check_axes(path, given, len(axes))
    if given[-len(page_axes) :] != page_axes:
        raise UsageError(
            f"{path}: --axes {given} does not fit the file's axes {axes}: its pages are "
            f"{page_axes}; rename only the axes before them"
        )
    return given[: -len(page_axes)]
