"""Connected regions of ``image > threshold``, per tile: local labels and partial sums.

Each tile labels its own core (no halo) and reduces every local component to a
handful of numbers that add up across tiles — area, the sums of its rows and
columns, its bounding box, its first pixel in raster order, and the sum, min
and max of the intensity — plus the labels on the four edges of its core. The
merge (:mod:`tilewise.measurements._regions_merge`) joins components that touch
across a core edge with a union–find over those edge labels and adds their
sums; no second pass over the pixels is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import UsageError
from tilewise.geometry import Grid, Tile
from tilewise.measurements.base import finite as _finite
from tilewise.measurements.base import plane

if TYPE_CHECKING:
    from tilewise.measurements._regions_merge import RegionsMerge

__all__ = ["Regions", "RegionsPart"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class RegionsPart:
    """One tile's components: per-component partial sums (global coordinates) and edge labels."""

    index: int
    area: Array
    sum_row: Array
    sum_col: Array
    min_row: Array
    min_col: Array
    max_row: Array
    max_col: Array
    #: raster index (row * width + col) of the component's first pixel
    first: Array
    intensity_sum: Array
    intensity_min: Array
    intensity_max: Array
    #: local labels (0 = background) on the core's top and bottom rows, left and right columns
    top: Array
    bottom: Array
    left: Array
    right: Array

    @property
    def count(self) -> int:
        """Number of local components."""
        return len(self.area)


@dataclass(frozen=True, slots=True)
class Regions:
    """The detector ``regions:threshold=T[,min_area=A,connectivity=1|2]``.

    Parameters
    ----------
    threshold : float
        Foreground is ``image > threshold``.
    connectivity : {1, 2}
        1: edge neighbours only; 2: corners too (skimage's ``connectivity``).
    min_area : int
        Regions with fewer pixels are dropped (and numbered as if absent).
    """

    threshold: float
    connectivity: int = 1
    min_area: int = 0

    def __post_init__(self) -> None:
        if self.connectivity not in (1, 2) or isinstance(self.connectivity, bool):
            raise UsageError(f"regions: connectivity must be 1 or 2, got {self.connectivity!r}")
        if isinstance(self.min_area, bool) or int(self.min_area) != self.min_area:
            raise UsageError(f"regions: min_area must be an integer, got {self.min_area!r}")
        if self.min_area < 0:
            raise UsageError(f"regions: min_area must be >= 0, got {self.min_area}")
        if not _finite(self.threshold):
            raise UsageError(f"regions: threshold must be a finite number, got {self.threshold!r}")

    @property
    def halo(self) -> int:
        """0: each tile labels its own core."""
        return 0

    def label_tile(self, image: Array, tile: Tile, image_shape: tuple[int, int]) -> Array:
        """The local labels of ``tile``'s core (1, 2, … in raster order of first pixel).

        Deterministic, so a second pass can recompute them and map them to the
        final labels with :meth:`RegionsMerge.lookup`.
        """
        from scipy import ndimage as ndi  # here: the main process merges without SciPy

        a = plane(image, tile, "regions")
        core = a[tile.core_in_read.slices]
        structure = ndi.generate_binary_structure(2, self.connectivity)
        labels, _ = ndi.label(core > self.threshold, structure=structure)
        return np.asarray(labels, dtype=np.int32)

    def detect(
        self,
        image: Array,
        tile: Tile,
        image_shape: tuple[int, int],
        *,
        intensity: Array | None = None,
    ) -> RegionsPart:
        """Measure the components in ``tile``'s core.

        ``intensity`` (pixels of ``tile.read``, one band) is measured instead
        of ``image`` when given.
        """
        labels = self.label_tile(image, tile, image_shape)
        values = plane(image if intensity is None else intensity, tile, "regions intensity")
        values = values[tile.core_in_read.slices]
        width = tile.core.width
        flat = labels.ravel()
        pixels = np.flatnonzero(flat)
        order = np.argsort(flat[pixels], kind="stable")
        pixels = pixels[order]
        lab = flat[pixels]
        starts = np.flatnonzero(np.diff(lab, prepend=0))
        rows = pixels // width + tile.core.row
        cols = pixels % width + tile.core.col
        v = values.ravel()[pixels]
        exact = v.dtype.kind in "ui" and v.dtype.itemsize <= 4
        if not starts.size:
            zero = np.zeros(0, dtype=np.int64)
            sums, mins = zero, zero
            vsum = np.zeros(0, dtype=np.int64 if exact else np.float64)
            vmin = vmax = v[:0]
        else:
            sums = np.diff(np.append(starts, len(pixels)))
            mins = np.minimum.reduceat(rows, starts)
            vsum = np.add.reduceat(v.astype(np.int64 if exact else np.float64), starts)
            vmin = np.minimum.reduceat(v, starts)
            vmax = np.maximum.reduceat(v, starts)
        image_width = image_shape[1]
        return RegionsPart(
            tile.index,
            area=sums.astype(np.int64),
            sum_row=_sum(rows, starts),
            sum_col=_sum(cols, starts),
            min_row=mins.astype(np.int64),
            min_col=_reduce(np.minimum, cols, starts),
            max_row=_reduce(np.maximum, rows, starts),
            max_col=_reduce(np.maximum, cols, starts),
            first=(rows[starts] * image_width + cols[starts]).astype(np.int64),
            intensity_sum=vsum,
            intensity_min=vmin,
            intensity_max=vmax,
            top=labels[0].copy(),
            bottom=labels[-1].copy(),
            left=labels[:, 0].copy(),
            right=labels[:, -1].copy(),
        )

    def merger(self, grid: Grid) -> RegionsMerge:
        """A merger for the tiles of ``grid``."""
        from tilewise.measurements._regions_merge import RegionsMerge

        return RegionsMerge(self, grid)


def _sum(values: Array, starts: Array) -> Array:
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(values.astype(np.int64), starts)


def _reduce(func: np.ufunc, values: Array, starts: Array) -> Array:
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    return func.reduceat(values, starts).astype(np.int64)
