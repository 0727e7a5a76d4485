"""Overview levels: how many, their sizes, and the 2 x 2 reduction that makes each from the last.

Level 0 is the full-resolution image; level ``k`` is level ``k - 1`` reduced by
2 in each dimension (``ceil(h / 2) x ceil(w / 2)``), its pixel ``(i, j)`` made
from the up to four pixels ``(2i..2i+1, 2j..2j+1)`` of level ``k - 1`` that lie
inside it. What one pixel of a level is, with ``resampling``:

``nearest``
    The top-left pixel of the four, as it is (nodata stays nodata).
``average``
    The mean of those of the four that are valid (not nodata, not NaN). Integers are
    rounded to the nearest value, halves up (``floor(mean + 0.5)``), exactly in
    integer arithmetic up to 32 bits, in float64 for 64-bit integers; floating-point
    pixels are summed in float64 and the mean rounded to their type. None valid:
    nodata (NaN for floating-point pixels without a nodata value).
``mode``
    The most frequent valid value of the four; a tie goes to the smallest value.
    None valid: as for ``average``.

Levels are added while one side of the last is larger than the tile (so the
smallest fits in one tile), as GDAL's COG driver does. A 2 x 2 block of a level
lies inside one tile of the level before it whenever tiles have an even side,
so a level is computed tile by tile exactly as on the whole image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tilewise.errors import UsageError
from tilewise.io.base import Array

__all__ = ["RESAMPLINGS", "default_resampling", "level_shapes", "reduce2"]

RESAMPLINGS = ("nearest", "average", "mode")


def default_resampling(dtype: str | np.dtype[Any]) -> str:
    """``nearest`` for integer pixels (class maps keep their classes), ``average`` for floats.

    >>> default_resampling("uint8"), default_resampling("float32")
    ('nearest', 'average')
    """
    return "average" if np.dtype(dtype).kind == "f" else "nearest"


def level_shapes(shape: tuple[int, int], block: tuple[int, int]) -> list[tuple[int, int]]:
    """Shapes of the overview levels (level 1 first) of an image in tiles of ``block``.

    >>> level_shapes((1500, 1300), (512, 512))
    [(750, 650), (375, 325)]
    >>> level_shapes((500, 300), (512, 512))
    []
    """
    shapes = []
    height, width = shape
    while height > block[0] or width > block[1]:
        height, width = -(-height // 2), -(-width // 2)
        shapes.append((height, width))
    return shapes


def _views(image: Array, nodata: float | None) -> tuple[list[Array], list[Array | None]]:
    """The four pixels of each 2 x 2 block as four strided views (padded to even sides),
    and whether each is valid: inside the image, not nodata, not NaN (None: all are)."""
    height, width = image.shape[:2]
    odd_rows, odd_cols = height % 2, width % 2
    padded = image
    if odd_rows or odd_cols:
        padded = np.zeros((height + odd_rows, width + odd_cols, *image.shape[2:]), image.dtype)
        padded[:height, :width] = image
    by_value = nodata is not None and not np.isnan(nodata)
    views: list[Array] = []
    valids: list[Array | None] = []
    for dr in (0, 1):
        for dc in (0, 1):
            view = padded[dr::2, dc::2]
            valid = ~np.isnan(view) if image.dtype.kind == "f" else None
            if by_value:
                valid = view != nodata if valid is None else valid & (view != nodata)
            if (dr and odd_rows) or (dc and odd_cols):
                valid = np.ones(view.shape, bool) if valid is None else valid
                if dr and odd_rows:
                    valid[-1] = False
                if dc and odd_cols:
                    valid[:, -1] = False
            views.append(view)
            valids.append(valid)
    return views, valids


def _average(views: list[Array], valids: list[Array | None], dtype: np.dtype[Any]) -> Array:
    """Mean of the valid pixels, rounded half up for integers (exactly, at any width);
    floats in float64."""
    exact = dtype.kind in "iu"
    if exact and dtype.itemsize == 8:
        views = _wide_enough(views)
    elif exact and all(valid is None for valid in valids):
        # four pixels in every block: floor(total / 4 + 1/2) is (total + 2) >> 2 (a floor,
        # negatives too), in the narrowest type that holds the sum (4-9x faster than below)
        wide = np.int32 if dtype.itemsize <= 2 else np.int64
        sums: Any = views[0].astype(wide)
        for view in views[1:]:
            sums += view
        sums += 2
        sums >>= 2
        quarter: Array = sums.astype(dtype)
        return quarter
    accumulator = object if views[0].dtype == object else np.int64 if exact else np.float64
    total = np.zeros(views[0].shape, accumulator)
    count = np.zeros(views[0].shape, np.int64)
    for view, valid in zip(views, valids, strict=True):
        if valid is None:
            total += view
            count += 1
        else:
            total += np.where(valid, view, 0)
            count += valid
    some = np.maximum(count, 1)
    # integers: floor(total / count + 1/2) exactly
    out = (2 * total + some) // (2 * some) if exact else total / some
    result: Array = out.astype(dtype)
    return result


#: 64-bit pixels below this size sum (4 of them, doubled) inside int64.
_INT64_SAFE = 2**59


def _wide_enough(views: list[Array]) -> list[Array]:
    """64-bit integer views as int64 when ``2 * (a + b + c + d) + 4`` fits it, else as
    Python integers (rare: pixels within 2**59 of the type's ends), so the mean is exact."""
    if all(
        view.size == 0 or (int(view.min()) > -_INT64_SAFE and int(view.max()) < _INT64_SAFE)
        for view in views
    ):
        return [view.astype(np.int64) for view in views]
    return [view.astype(object) for view in views]


def _mode(views: list[Array], valids: list[Array | None], dtype: np.dtype[Any]) -> Array:
    """Most frequent valid pixel, the smallest of the most frequent on a tie."""
    oks = [np.ones(views[0].shape, bool) if v is None else v for v in valids]
    votes = [np.zeros(views[0].shape, np.int8) for _ in views]
    for i in range(4):
        votes[i] += oks[i]
        for j in range(i + 1, 4):
            same = (views[i] == views[j]) & oks[i] & oks[j]
            votes[i] += same
            votes[j] += same
    best = np.maximum(np.maximum(votes[0], votes[1]), np.maximum(votes[2], votes[3]))
    top = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
    out = np.full(views[0].shape, top, dtype=dtype)
    for view, vote, ok in zip(views, votes, oks, strict=True):
        np.copyto(out, np.minimum(out, view), where=ok & (vote == best))
    return out


def _empty_value(dtype: np.dtype[Any], nodata: float | None) -> Any:
    """What a pixel with no valid source pixel becomes."""
    if nodata is not None:
        return nodata
    return np.nan  # floats only: integers without nodata have a valid pixel in every block


def reduce2(image: Array, resampling: str, nodata: float | None = None) -> Array:
    """Level ``k`` from level ``k - 1`` (see the module's docstring for what each pixel is).

    Parameters
    ----------
    image : ndarray
        ``(h, w)`` or ``(h, w, bands)``.
    resampling : str
        ``nearest``, ``average`` or ``mode``.
    nodata : float, optional
        The value that marks missing pixels (``average`` and ``mode`` skip it).

    Returns
    -------
    ndarray
        ``(ceil(h / 2), ceil(w / 2)[, bands])``, of ``image``'s dtype.

    >>> reduce2(np.array([[1, 2, 3], [3, 4, 5]], dtype=np.uint8), "average")
    array([[3, 4]], dtype=uint8)
    >>> reduce2(np.array([[1, 2], [2, 1]], dtype=np.uint8), "mode")
    array([[1]], dtype=uint8)
    """
    if resampling == "nearest":
        return np.ascontiguousarray(image[::2, ::2])
    if resampling not in RESAMPLINGS:
        raise UsageError(f"unknown overview resampling {resampling!r}; use {RESAMPLINGS}")
    views, valids = _views(image, nodata)
    if resampling == "average":
        out = _average(views, valids, image.dtype)
    else:
        out = _mode(views, valids, image.dtype)
    checked = [valid for valid in valids if valid is not None]
    if len(checked) == 4:  # else one of the four is valid in every block
        none = ~(checked[0] | checked[1] | checked[2] | checked[3])
        if none.any():
            out[none] = _empty_value(image.dtype, nodata)
    return out
