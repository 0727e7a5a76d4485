"""In-memory driver: cut an array into tiles, detect per tile, merge — as a run will."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import UsageError
from tilewise.geometry import Grid, Layout, parse_tile_shape
from tilewise.measurements._table import Table, concat
from tilewise.measurements.base import Detector
from tilewise.measurements.regions import Regions

__all__ = ["tiled"]


def tiled(
    image: npt.NDArray[Any],
    *,
    detect: Detector,
    tile: Any = 1024,
    layout: str | Layout = Layout.GRID,
    intensity: npt.NDArray[Any] | None = None,
) -> Any:
    """Measure an in-memory image tile by tile; equal to measuring it whole.

    Each tile gets the pixels of its read window (core + ``detect.halo``),
    exactly what a worker gets in a run; the parts go through one merger, as in
    the main process of a run.

    Parameters
    ----------
    image : ndarray
        ``(rows, cols)`` or ``(rows, cols, bands)``.
    detect : Detector
        For example ``Peaks(threshold=10, min_distance=3)``, ``Regions(threshold=0)``
        or ``Stats()``.
    tile, layout
        As in :func:`tilewise.process`.
    intensity : ndarray, optional
        For ``Regions``: a second image of the same rows and columns whose
        values are measured instead of ``image``'s.

    Returns
    -------
    Table or result
        For row detectors a :data:`Table` (the rows streamed per tile, then the
        rest); for ``Stats`` its merged result.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise UsageError(f"expected a (rows, cols) or (rows, cols, bands) array, got {array.shape}")
    shape = (int(array.shape[0]), int(array.shape[1]))
    extra: dict[str, Any] = {}
    if intensity is not None:
        if not isinstance(detect, Regions):
            raise UsageError(f"only regions measure a second intensity image, not {detect!r}")
        if np.shape(intensity)[:2] != shape:
            raise UsageError(
                f"the intensity image is {np.shape(intensity)}, the image {array.shape}"
            )
    grid = Grid(shape, parse_tile_shape(tile), Layout(layout), halo=detect.halo)
    merger = detect.merger(grid)
    streamed: list[Table] = []
    for t in grid:
        if intensity is not None:
            extra["intensity"] = intensity[t.read.slices]
        rows = merger.add(detect.detect(array[t.read.slices], t, shape, **extra))
        if rows is not None:
            streamed.append(rows)
    rest = merger.finish()
    if not isinstance(rest, dict) or not streamed:
        return rest
    return concat([*streamed, rest])
