"""The detector contract: what runs per tile, and what merges in the main process.

A detector is a small, picklable value (a frozen dataclass of its parameters).
Per tile, after the ops, :meth:`Detector.detect` gets the pixels of the tile's
read window — the core grown by :attr:`Detector.halo`, clipped to the image —
and returns a small *part*: the rows of the objects this tile owns (anchored in
its core, in global coordinates) plus the border state the merge needs. The
main process feeds the parts, in any order, to one :class:`Merger`, which
returns rows as soon as they are final and the rest from :meth:`Merger.finish`.
Parts are small: those of peaks and regions grow with the tile's border and
the objects in it, not with its area; a stats part holds one count per value
between the tile's min and max (integers) or per occupied bin (floats).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tilewise.errors import GeometryError, UsageError
from tilewise.geometry import Grid, Tile

__all__ = ["Detector", "Merger", "finite", "plane"]

Array = npt.NDArray[Any]


class Merger(Protocol):
    """Collects the parts of one image's tiles, in any order."""

    def add(self, part: Any) -> Any:
        """Take one tile's part; return what became final with it (rows, or None)."""

    def finish(self) -> Any:
        """Every tile was added: return the rest of the result."""


class Detector(Protocol):
    """Per-tile measurement with an exact merge (see the module docstring)."""

    @property
    def halo(self) -> int:
        """Pixels beyond the core the decision needs (of the image after the ops)."""

    def detect(self, image: Array, tile: Tile, image_shape: tuple[int, int]) -> Any:
        """Measure one tile: ``image`` holds the pixels of ``tile.read``."""

    def merger(self, grid: Grid) -> Merger:
        """A fresh merger for the tiles of ``grid``."""


def finite(value: object) -> bool:
    """Whether ``value`` is a finite real number (not a bool or a string).

    >>> finite(3), finite("3"), finite(float("nan")), finite(None)
    (True, False, False, False)
    """
    if value is None or isinstance(value, bool | str):
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def plane(image: Array, tile: Tile, what: str) -> Array:
    """``image`` as a 2-D (rows, cols) array of ``tile.read``'s shape, or a clear error."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise UsageError(
            f"{what} measures one band; {tile} has shape {array.shape} — select one band first "
            "(for example with the 'bands' op)"
        )
    if array.shape != tile.read.shape:
        raise GeometryError(
            f"{tile}: {what} got an array of {array.shape}, the read window is {tile.read.shape}"
        )
    if array.dtype.kind not in "uif":
        raise UsageError(f"{what} measures integer or float pixels, not {array.dtype}")
    return array
