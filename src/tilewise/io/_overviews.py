"""Overview levels: how many, their sizes, and the 2 x 2 reduction that makes each from the last.

Level 0 is the full-resolution image; level ``k`` is level ``k - 1`` reduced by
2 in each dimension (``ceil(h / 2) x ceil(w / 2)``), its pixel ``(i, j)`` made
from the up to four pixels ``(2i..2i+1, 2j..2j+1)`` of level ``k - 1`` that lie
inside it. What one pixel of a level is, with ``resampling``:

``nearest``
    The top-left pixel of the four, as it is (nodata stays nodata).
``average``
    The mean of those of the four that are valid (not nodata, not NaN), computed in
    float64; integers are rounded to the nearest value, halves up
    (``floor(mean + 0.5)``). None valid: nodata (NaN for floating-point pixels without
    a nodata value).
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


def _quads(image: Array, fill: Any) -> tuple[Array, Array]:
    """``image`` padded to even sides with ``fill``; the four pixels of each 2 x 2 block on a
    new last axis, and whether each lies inside the image."""
    height, width = image.shape[:2]
    rest = image.shape[2:]
    out_h, out_w = -(-height // 2), -(-width // 2)
    padded = np.full((2 * out_h, 2 * out_w, *rest), fill, dtype=image.dtype)
    padded[:height, :width] = image
    inside = np.zeros((2 * out_h, 2 * out_w), dtype=bool)
    inside[:height, :width] = True

    def split(array: Array) -> Array:
        extra = array.shape[2:]
        blocks = array.reshape(out_h, 2, out_w, 2, *extra)
        order = (0, 2, *range(4, 4 + len(extra)), 1, 3)
        return blocks.transpose(order).reshape(out_h, out_w, *extra, 4)

    inside4 = split(inside)
    if rest:
        inside4 = np.broadcast_to(inside4[:, :, None, :], (out_h, out_w, *rest, 4))
    return split(padded), inside4


def _valid(values: Array, inside: Array, nodata: float | None) -> Array:
    valid = inside.copy()
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    if nodata is not None and not np.isnan(nodata):
        valid &= values != nodata
    return valid


def _empty_value(dtype: np.dtype[Any], nodata: float | None) -> Any:
    """What a pixel with no valid source pixel becomes."""
    if nodata is not None:
        return nodata
    if dtype.kind == "f":
        return np.nan
    return 0  # unreachable: integers without nodata have a valid pixel in every block


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
    dtype = image.dtype
    values, inside = _quads(image, 0)
    valid = _valid(values, inside, nodata)
    count = valid.sum(axis=-1)
    none = count == 0
    if resampling == "average":
        total = np.where(valid, values.astype(np.float64), 0.0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            mean = np.clip(np.floor(mean + 0.5), info.min, info.max)
        out = np.where(none, 0, mean).astype(dtype)
    else:
        same = values[..., :, None] == values[..., None, :]
        votes = (same & valid[..., :, None] & valid[..., None, :]).sum(axis=-1)
        best = votes.max(axis=-1, keepdims=True)
        top = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
        candidates = np.where(valid & (votes == best), values, np.array(top, dtype=dtype))
        out = candidates.min(axis=-1)
    if none.any():
        out[none] = _empty_value(dtype, nodata)
    return out
