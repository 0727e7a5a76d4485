"""Local maxima, tile by tile, equal to ``skimage.feature.peak_local_max`` on the whole image.

What skimage does (0.26, ``labels=None``, ``footprint=None``, ``p_norm=inf``):
a pixel is a *candidate* when it equals the maximum of the ``(2D+1)²`` box
around it (``mode='nearest'``), exceeds the threshold, and lies outside the
excluded border band; an image that is constant has no candidates at all. For
``D = min_distance > 1`` the candidates, sorted by decreasing value (ties in
raster order), are kept greedily: one is dropped when an already kept one lies
at Chebyshev distance ``< D``.

Why a tile can decide almost everything: two candidates closer than ``D`` lie
in each other's ``(2D+1)²`` box, so each is ``>=`` the other — they have equal
values. Conflicts therefore happen only inside *groups* of equal candidates
linked by steps of at most ``D - 1`` (plateaus, and chains of equal maxima),
the greedy order inside a group is plain raster order, and groups do not
influence each other. A group can be arbitrarily long (a ridge of equal values
along a row keeps every D-th pixel counted from its first one), so its result
is not local — but the group is.

So each tile, reading ``2D - 1`` pixels beyond its core, knows which pixels are
candidates up to ``D - 1`` beyond the core, and hence every group that touches
its core as far as it stays within that band:

* a core candidate alone in its group is a peak;
* a group lying entirely in the core is complete (any further member would be
  within ``D - 1`` of it, inside the band): the tile applies the greedy rule to it;
* a group that leaves the core is *contested*: the tile sends its core members
  to the main process, which gets every member of such a group from the tiles
  that own them and applies the same rule to all contested candidates at once.

The constant-image rule is the one global fact: each tile reports its core's
minimum and maximum; peaks found by a tile whose whole read window is constant
are held back until the end and dropped if the image turns out constant.
Memory in the main process grows with the contested candidates (equal maxima on
tile borders), not with the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from tilewise.errors import GeometryError, UsageError
from tilewise.geometry import Grid, Tile, Window
from tilewise.measurements._spacing import conflict_groups, greedy_spacing
from tilewise.measurements._table import Table, concat, empty, take
from tilewise.measurements.base import finite as _finite
from tilewise.measurements.base import plane

__all__ = ["Peaks", "PeaksMerge", "PeaksPart", "skimage_order"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class PeaksPart:
    """One tile's peaks (final) and contested candidates (for the main process)."""

    index: int
    rows: Array
    cols: Array
    values: Array
    contested_rows: Array
    contested_cols: Array
    contested_values: Array
    #: the tile's whole read window has one value: its peaks wait for the constant-image rule
    constant: bool
    core_min: Any
    core_max: Any


@dataclass(frozen=True, slots=True)
class Peaks:
    """The detector ``peaks:min_distance=D,threshold=T[,exclude_border=B]``.

    Parameters
    ----------
    threshold : float
        ``threshold_abs`` of ``peak_local_max``: peaks are strictly greater. It
        is required — skimage's default (the image minimum) needs a pass over
        the whole image first (``tilewise.measurements.Stats`` gives it).
    min_distance : int
        At least 1, as in skimage.
    exclude_border : bool, int or (int, int)
        As in skimage: ``True`` means ``min_distance``; an int or a (rows, cols)
        pair is a band in pixels at the image border where no peak is reported.
    """

    threshold: float
    min_distance: int = 1
    exclude_border: bool | int | tuple[int, int] = True

    def __post_init__(self) -> None:
        d = self.min_distance
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise UsageError(f"peaks: min_distance must be an integer >= 1, got {d!r}")
        if not _finite(self.threshold):
            raise UsageError(
                f"peaks: threshold must be a finite number, got {self.threshold!r} (skimage's "
                "default, the image minimum, needs a first pass: take it from stats)"
            )
        b = self.exclude_border
        widths = b if isinstance(b, tuple) else (b, b)
        if len(widths) != 2 or any(
            not isinstance(w, bool | int | np.integer) or w < 0 for w in widths
        ):
            raise UsageError(
                f"peaks: exclude_border must be true/false, a width >= 0 or (rows, cols), got {b!r}"
            )

    @property
    def halo(self) -> int:
        """``2·min_distance − 1``: candidates up to ``min_distance − 1`` beyond the core."""
        return 2 * self.min_distance - 1

    @property
    def border_width(self) -> tuple[int, int]:
        """The excluded band at the image border, in pixels (rows, cols)."""
        b = self.exclude_border
        if isinstance(b, bool):
            width = self.min_distance if b else 0
            return (width, width)
        if isinstance(b, tuple):
            return (int(b[0]), int(b[1]))
        return (int(b), int(b))

    def detect(self, image: Array, tile: Tile, image_shape: tuple[int, int]) -> PeaksPart:
        """The peaks ``tile`` owns; ``image`` holds ``tile.read`` (core + at least ``halo``)."""
        a = plane(image, tile, "peaks")
        need = tile.core.grow(self.halo, bounds=image_shape)
        if not tile.read.contains(need):
            raise GeometryError(
                f"peaks: {tile} reads {tile.read}, but min_distance={self.min_distance} needs "
                f"{need} (a halo of {self.halo})"
            )
        if a.dtype.kind == "f" and np.isnan(a).any():
            raise UsageError(
                f"peaks: {tile} has NaN pixels; local maxima among NaN are undefined "
                "(peak_local_max's answer depends on its filter's internals) — replace them first"
            )
        d = self.min_distance
        known = tile.core.grow(d - 1, bounds=image_shape)
        inner = known.relative_to(tile.read)
        values = a[inner.slices]
        box_max = ndi.maximum_filter(a, size=2 * d + 1, mode="nearest")[inner.slices]
        cand = (values == box_max) & (values > self.threshold)
        _exclude_border(cand, known, image_shape, self.border_width)
        core = a[tile.core_in_read.slices]
        rr, cc = np.nonzero(cand)
        cr = tile.core.relative_to(known)
        in_core = (rr >= cr.row) & (rr < cr.stop_row) & (cc >= cr.col) & (cc < cr.stop_col)
        keep = np.ones(int(in_core.sum()), dtype=bool)
        contested = np.zeros_like(keep)
        if d > 1 and rr.size:
            labels, count = conflict_groups(cand, d - 1)
            group = labels[rr, cc]
            crossing = np.zeros(count + 1, dtype=bool)
            crossing[group[~in_core]] = True
            size = np.bincount(group, minlength=count + 1)
            mine = group[in_core]
            contested = crossing[mine]
            shared = ~contested & (size[mine] > 1)
            keep = ~contested
            keep[shared] = greedy_spacing(rr[in_core][shared], cc[in_core][shared], d)
        r = rr[in_core] + known.row
        c = cc[in_core] + known.col
        v = values[rr[in_core], cc[in_core]]
        return PeaksPart(
            tile.index,
            r[keep],
            c[keep],
            v[keep],
            r[contested],
            c[contested],
            v[contested],
            constant=bool(a.min() == a.max()),
            core_min=core.min(),
            core_max=core.max(),
        )

    def merger(self, grid: Grid) -> PeaksMerge:
        """A merger for the tiles of ``grid``."""
        return PeaksMerge(self, grid)


def _exclude_border(
    cand: npt.NDArray[np.bool_], known: Window, shape: tuple[int, int], widths: tuple[int, int]
) -> None:
    for axis, (width, start, size) in enumerate(
        zip(widths, (known.row, known.col), shape, strict=True)
    ):
        if width == 0:
            continue
        low = max(0, width - start)
        high = max(0, size - width - start)
        index: list[Any] = [slice(None), slice(None)]
        index[axis] = slice(None, low)
        cand[tuple(index)] = False
        index[axis] = slice(high, None)
        cand[tuple(index)] = False


def _table(rows: Array, cols: Array, values: Array) -> Table:
    return {"row": rows.astype(np.int64), "col": cols.astype(np.int64), "value": values}


@dataclass
class PeaksMerge:
    """Collects :class:`PeaksPart` s; streams final peaks, resolves contested groups at the end."""

    detector: Peaks
    grid: Grid
    _seen: set[int] = field(default_factory=set)
    _held: list[Table] = field(default_factory=list)
    _contested: list[Table] = field(default_factory=list)
    _min: Any = None
    _max: Any = None
    _dtype: Any = None

    def add(self, part: PeaksPart) -> Table:
        """Take one tile's part; return its peaks when they are already final."""
        if part.index in self._seen:  # a tile done twice gives the same part
            return _table(part.rows[:0], part.cols[:0], part.values[:0])
        self._seen.add(part.index)
        self._dtype = part.values.dtype
        self._min = part.core_min if self._min is None else min(self._min, part.core_min)
        self._max = part.core_max if self._max is None else max(self._max, part.core_max)
        if part.contested_rows.size:
            self._contested.append(
                _table(part.contested_rows, part.contested_cols, part.contested_values)
            )
        rows = _table(part.rows, part.cols, part.values)
        if part.constant:
            self._held.append(rows)
            return take(rows, np.zeros(0, dtype=np.intp))
        return rows

    def finish(self) -> Table:
        """All tiles added: the held and the contested peaks that survive."""
        missing = len(self.grid) - len(self._seen)
        if missing:
            raise UsageError(f"peaks: {missing} of {len(self.grid)} tiles were never merged")
        out = empty({"row": np.int64, "col": np.int64, "value": self._dtype})
        rows, cols = self.grid.image_shape
        if self._min == self._max and rows * cols > 1:  # skimage: a constant image has no peaks
            return out
        parts = [out, *self._held]
        if self._contested:
            cand = concat(self._contested)
            order = np.lexsort((cand["col"], cand["row"]))
            cand = take(cand, order)
            keep = greedy_spacing(cand["row"], cand["col"], self.detector.min_distance)
            parts.append(take(cand, keep))
        return concat(parts)


def skimage_order(table: Table) -> Table:
    """Rows in the order ``peak_local_max`` returns them: by decreasing value, then raster.

    "Decreasing" is skimage's own key, the negated value in the image's dtype
    (for unsigned integers 0 sorts first, as there).
    """
    key = np.negative(table["value"])
    return take(table, np.lexsort((table["col"], table["row"], key)))
