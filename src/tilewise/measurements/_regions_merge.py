"""Merging regions across tiles: a union–find over the labels on the core edges.

Parts arrive in any order. Each local component becomes a node; when a tile
and one of its neighbours (4 with connectivity 1, 8 with 2) have both arrived,
the foreground pixels facing each other across their shared edge or corner
join their components. A tile's edge labels are dropped once all its
neighbours have arrived, so the state held is the per-component sums plus the
edges of tiles still waiting for a neighbour.

Numbering: the final labels are 1…N in raster order of each region's first
pixel (its topmost, then leftmost pixel) — the order ``skimage.measure.label``
numbers regions in — counting only regions of at least ``min_area`` pixels.
With ``min_area=0`` the labels equal skimage's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import UsageError
from tilewise.geometry import Grid
from tilewise.measurements._table import Table

if TYPE_CHECKING:  # the merge itself needs no SciPy, which the regions module imports
    from tilewise.measurements.regions import Regions, RegionsPart

__all__ = ["RegionsMerge", "relabel"]

Array = npt.NDArray[Any]

_SUMS = ("area", "sum_row", "sum_col", "intensity_sum")
_MINS = ("min_row", "min_col", "first", "intensity_min")
_MAXS = ("max_row", "max_col", "intensity_max")


@dataclass
class RegionsMerge:
    """Collects :class:`RegionsPart` s; :meth:`finish` returns one row per region."""

    detector: Regions
    grid: Grid
    _parent: list[int] = field(default_factory=list)
    _base: dict[int, tuple[int, int]] = field(default_factory=dict)
    _edges: dict[int, RegionsPart] = field(default_factory=dict)
    _columns: dict[str, list[Array]] = field(default_factory=dict)
    _node_label: Array | None = None

    def add(self, part: RegionsPart) -> None:
        """Take one tile's part (no row is final before every tile is in)."""
        if part.index in self._base:  # a tile done twice gives the same part
            return
        base = len(self._parent)
        self._parent.extend(range(base, base + part.count))
        self._base[part.index] = (base, part.count)
        for name in (*_SUMS, *_MINS, *_MAXS):
            self._columns.setdefault(name, []).append(getattr(part, name))
        self._edges[part.index] = part
        for other in self._neighbours(part.index):
            if other in self._edges:
                self._link(part, self._edges[other])
        for index in (part.index, *self._neighbours(part.index)):
            if index in self._edges and all(n in self._base for n in self._neighbours(index)):
                del self._edges[index]

    def _neighbours(self, index: int) -> list[int]:
        down, across = self.grid.counts
        r, c = divmod(index, across)
        steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
        if self.detector.connectivity == 2:
            steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
        return [
            (r + dr) * across + c + dc
            for dr, dc in steps
            if 0 <= r + dr < down and 0 <= c + dc < across
        ]

    def _link(self, a: RegionsPart, b: RegionsPart) -> None:
        core_a = self.grid.tile(a.index).core
        core_b = self.grid.tile(b.index).core
        if core_a.row > core_b.row or (core_a.row == core_b.row and core_a.col > core_b.col):
            a, b, core_a, core_b = b, a, core_b, core_a
        pairs = []
        diagonal = self.detector.connectivity == 2
        if core_b.row == core_a.stop_row:  # b below a (or below-left/right)
            pairs += _facing(a.bottom, core_a.col, b.top, core_b.col, diagonal)
        if core_b.col == core_a.stop_col and core_b.row < core_a.stop_row:  # b right of a
            pairs += _facing(a.right, core_a.row, b.left, core_b.row, diagonal)
        if not pairs:
            return
        la = np.concatenate([p[0] for p in pairs])
        lb = np.concatenate([p[1] for p in pairs])
        if not la.size:
            return
        joined = np.unique(np.stack([la, lb], axis=1), axis=0)
        base_a, base_b = self._base[a.index][0] - 1, self._base[b.index][0] - 1
        for x, y in joined.tolist():
            self._union(base_a + x, base_b + y)

    def _find(self, node: int) -> int:
        parent = self._parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def _union(self, x: int, y: int) -> None:
        rx, ry = self._find(x), self._find(y)
        if rx != ry:
            self._parent[max(rx, ry)] = min(rx, ry)

    def finish(self) -> Table:
        """One row per region, sorted by label (see the module docstring for the numbering)."""
        missing = len(self.grid) - len(self._base)
        if missing:
            raise UsageError(f"regions: {missing} of {len(self.grid)} tiles were never merged")
        parent = np.asarray(self._parent, dtype=np.int64)
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        cols = {name: np.concatenate(parts) for name, parts in self._columns.items()}
        roots, node_group = np.unique(parent, return_inverse=True)
        order = np.argsort(node_group, kind="stable")
        starts = np.flatnonzero(np.diff(node_group[order], prepend=-1))
        merged: dict[str, Array] = {}
        for names, ufunc in ((_SUMS, np.add), (_MINS, np.minimum), (_MAXS, np.maximum)):
            for name in names:
                values = cols[name][order]
                merged[name] = ufunc.reduceat(values, starts) if starts.size else values[:0]
        kept = merged["area"] >= self.detector.min_area
        rank = np.argsort(merged["first"][kept], kind="stable")
        group_label = np.zeros(len(roots), dtype=np.int64)
        group_label[np.flatnonzero(kept)[rank]] = np.arange(1, rank.size + 1)
        self._node_label = group_label[node_group] if parent.size else parent
        keep = np.flatnonzero(kept)[rank]
        area = merged["area"][keep]
        return {
            "label": np.arange(1, keep.size + 1, dtype=np.int64),
            "area": area,
            "centroid_row": merged["sum_row"][keep] / area,
            "centroid_col": merged["sum_col"][keep] / area,
            "bbox_min_row": merged["min_row"][keep],
            "bbox_min_col": merged["min_col"][keep],
            "bbox_max_row": merged["max_row"][keep] + 1,
            "bbox_max_col": merged["max_col"][keep] + 1,
            "intensity_mean": merged["intensity_sum"][keep] / area,
            "intensity_min": merged["intensity_min"][keep],
            "intensity_max": merged["intensity_max"][keep],
        }

    @property
    def label_dtype(self) -> np.dtype[Any]:
        """uint32 when the labels fit, else uint64 (after :meth:`finish`)."""
        labels = self._node_label
        count = int(labels.max()) if labels is not None and labels.size else 0
        return np.dtype(np.uint32 if count < 2**32 else np.uint64)

    def lookup(self, index: int) -> Array:
        """Tile ``index``'s local label → final label (0 for background and dropped regions).

        Available after :meth:`finish`; use it with :func:`relabel` on the
        labels :meth:`Regions.label_tile` gives for that tile.
        """
        if self._node_label is None:
            raise UsageError("regions: lookup() is available after finish()")
        base, count = self._base[index]
        table = np.zeros(count + 1, dtype=self.label_dtype)
        table[1:] = self._node_label[base : base + count]
        return table


def relabel(local: Array, lookup: Array) -> Array:
    """Map a tile's local labels to the final ones.

    >>> relabel(np.array([[0, 1], [2, 1]]), np.array([0, 7, 3])).tolist()
    [[0, 7], [3, 7]]
    """
    return lookup[local]


def _facing(
    line_a: Array, start_a: int, line_b: Array, start_b: int, diagonal: bool
) -> list[tuple[Array, Array]]:
    """Label pairs of foreground pixels facing each other across a boundary.

    ``line_a[i]`` sits at position ``start_a + i`` along the boundary, ``line_b[j]``
    at ``start_b + j``; they touch when the positions differ by 0 (or 1 with
    ``diagonal``).
    """
    out = []
    for shift in (-1, 0, 1) if diagonal else (0,):
        lo = max(start_a + shift, start_b)
        hi = min(start_a + shift + len(line_a), start_b + len(line_b))
        if lo >= hi:
            continue
        a = line_a[lo - start_a - shift : hi - start_a - shift]
        b = line_b[lo - start_b : hi - start_b]
        both = (a > 0) & (b > 0)
        out.append((a[both], b[both]))
    return out
