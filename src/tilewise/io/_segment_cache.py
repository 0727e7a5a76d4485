"""Decoded TIFF segments kept by one open TIFF for the reads that follow (one per worker).

A tile's read window is its core grown by the halo, so it reaches into the
TIFF segments (tiles or strips) of its neighbours. Tiles run in row-major runs,
so the left neighbour's segments were decoded just before, but the neighbour
above ran a whole row of tiles earlier: an LRU of a few dozen MiB has forgotten
its segments by then, and each tile decoded 1.4-1.5x the segments it needs.

Two things keep what the next tile row needs, within the same budget:

* segments that no read has used whole yet (a halo took only their first rows:
  the tile below will need all of them) are evicted after every segment that
  was used whole. They take at most half the budget (the oldest go first), and
  only when a whole row of segments fits in that half: in a wider image they
  would crowd out the left neighbour's segments, so all are kept alike (LRU);
* when a segment is evicted, its last rows are kept as a small strip, as many as
  the halos seen so far reach into a segment (at most a quarter of it): the tile
  below needs exactly those rows as its top halo.

Memory stays bounded by :data:`SEGMENT_CACHE_BYTES` plus :data:`STRIP_CACHE_BYTES`
per open TIFF, whatever the image's size.
"""

from __future__ import annotations

from collections import OrderedDict

from tilewise.io.base import Array

__all__ = ["SEGMENT_CACHE_BYTES", "STRIP_CACHE_BYTES", "SegmentCache"]

#: Decoded segments kept per open TIFF (per worker).
SEGMENT_CACHE_BYTES = 32 << 20
#: Last rows of evicted segments kept per open TIFF (per worker).
STRIP_CACHE_BYTES = 4 << 20


class SegmentCache:
    """Decoded segments by key, each as ``(rows, cols, samples)``; None is an empty segment.

    Parameters
    ----------
    rows : int
        Rows of a full segment (the TIFF's tile length or rows per strip).
    row_bytes : int
        Bytes of one row of decoded segments across the image.
    budget, strip_budget : int
        Bytes of whole segments, and of kept last rows, held at most.
    """

    def __init__(
        self,
        rows: int,
        row_bytes: int,
        budget: int = SEGMENT_CACHE_BYTES,
        strip_budget: int = STRIP_CACHE_BYTES,
    ) -> None:
        self._rows = rows
        self._budget = budget
        self._strip_budget = strip_budget
        #: Segments no read has used whole yet, then those that one has (each oldest first).
        self._fresh: OrderedDict[int, Array | None] = OrderedDict()
        self._used: OrderedDict[int, Array | None] = OrderedDict()
        self._bytes = 0
        self._fresh_bytes = 0
        self._fresh_budget = budget // 2 if row_bytes <= budget // 2 else 0
        #: The last rows of evicted segments: key -> (rows, index of their first row).
        self._strips: OrderedDict[int, tuple[Array, int]] = OrderedDict()
        self._strip_bytes = 0
        #: Rows kept of an evicted segment: the deepest halo seen reaching into one.
        self.tail_rows = 0

    def __contains__(self, key: int) -> bool:
        return key in self._fresh or key in self._used

    def has(self, key: int, top: int, bottom: int) -> bool:
        """Whether rows ``top:bottom`` of segment ``key`` can be served without decoding."""
        if key in self:
            return True
        strip = self._strips.get(key)
        return strip is not None and strip[1] <= top and bottom <= strip[1] + len(strip[0])

    def get(self, key: int, top: int, bottom: int, whole: bool) -> tuple[Array | None, int] | None:
        """Rows ``top:bottom`` of segment ``key`` as ``(array, row of its first row)``, or None.

        ``whole`` says the read uses every pixel of the segment that lies in the image.
        """
        self._learn(top, bottom)
        if key in self._used:
            self._used.move_to_end(key)
            return self._used[key], 0
        if key in self._fresh:
            segment = self._fresh.pop(key) if whole else self._fresh[key]
            if whole:
                self._fresh_bytes -= 0 if segment is None else segment.nbytes
                self._used[key] = segment
            else:
                self._fresh.move_to_end(key)
            return segment, 0
        strip = self._strips.get(key)
        if strip is not None and strip[1] <= top and bottom <= strip[1] + len(strip[0]):
            self._strips.move_to_end(key)
            return strip
        return None

    def put(self, key: int, segment: Array | None, whole: bool) -> None:
        """Keep a newly decoded segment, evicting what the budget no longer holds."""
        size = 0 if segment is None else segment.nbytes
        while self._bytes + size > self._budget and (self._fresh or self._used):
            self._evict()
        self._strips.pop(key, None)  # the whole segment replaces its last rows
        if whole or size > self._fresh_budget:
            self._used[key] = segment
        else:
            while self._fresh and self._fresh_bytes + size > self._fresh_budget:
                self._evict(self._fresh)
            self._fresh[key] = segment
            self._fresh_bytes += size
        self._bytes += size

    def _learn(self, top: int, bottom: int) -> None:
        """Note how deep a halo reaches into a segment (a read of its first or last rows only)."""
        if top > 0 and bottom >= self._rows:
            depth = self._rows - top
        elif top == 0 and bottom < self._rows:
            depth = bottom
        else:
            return
        if depth <= self._rows // 4:
            self.tail_rows = max(self.tail_rows, depth)

    def _evict(self, pool: OrderedDict[int, Array | None] | None = None) -> None:
        if pool is None:
            pool = self._used if self._used else self._fresh
        key, segment = pool.popitem(last=False)
        if segment is None:
            return
        self._bytes -= segment.nbytes
        if pool is self._fresh:
            self._fresh_bytes -= segment.nbytes
        keep = min(self.tail_rows, len(segment))
        if keep == 0 or self._strip_budget == 0:
            return
        strip = segment[len(segment) - keep :].copy()
        while self._strips and self._strip_bytes + strip.nbytes > self._strip_budget:
            _, (old, _) = self._strips.popitem(last=False)
            self._strip_bytes -= old.nbytes
        if strip.nbytes <= self._strip_budget:
            self._strips[key] = (strip, len(segment) - keep)
            self._strip_bytes += strip.nbytes
