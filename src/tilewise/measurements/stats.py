"""Per-band statistics from per-tile parts that merge associatively.

Two methods, chosen by dtype:

* **exact** — integers of up to 16 bits (``uint8``, ``int8``, ``uint16``,
  ``int16``): each tile counts every value (see :func:`_value_counts`) and keeps
  the counts between its min and max (a full histogram, at most 65,536 bins).
  Counts add, so the merged histogram is the whole image's. count, min, max,
  percentiles and the histogram equal NumPy's exactly; the mean is
  the exact sum over the count (what NumPy gets, its float64 sums of integers
  being exact); the std is computed from exact integer sums and rounded once
  (NumPy's own is within a few units in the last place of it).
* **streamed** — floats and wider integers: count, min and max are exact; mean
  and std merge tile by tile with Chan et al.'s parallel update of
  (count, mean, M2) in float64 (the reference is NumPy in float64:
  ``np.mean(x, dtype=np.float64)``, ``np.std(x, dtype=np.float64)``; they
  agree to about 1e-12 relative). Percentiles come from a sparse histogram
  whose bins keep the sign, exponent and top 10 mantissa bits of each value,
  with every bin's exact min and max: each order statistic lies in its bin, so
  a percentile is off by at most the bin's spread, ``2**-10`` (0.1 %) of its
  value — and is exact when its bins hold one distinct value. The histogram
  with ``bins``/``range`` is exact (tiles count into the same edges); without a
  ``range`` the streamed method gives none (the edges would need the min and
  max first).

NaN and pixels equal to ``nodata`` are left out and counted as ``nodata_count``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import UsageError
from tilewise.geometry import Grid, Tile
from tilewise.measurements._quantile import linear_percentile, order_statistic
from tilewise.measurements._table import Table

__all__ = ["BandPart", "BandStats", "Stats", "StatsMerge", "StatsPart", "stats_table"]

Array = npt.NDArray[Any]

_MANTISSA_BITS = 10
_EXACT = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16)}


@dataclass(frozen=True, slots=True)
class BandPart:
    """One band of one tile (or of several merged tiles)."""

    dtype: np.dtype[Any]
    nodata_count: int
    #: exact method: counts of the values ``value_low``, ``value_low + 1``, … (the tile's range)
    value_counts: Array | None = None
    value_low: int = 0
    #: streamed method
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: Any = None
    maximum: Any = None
    bin_keys: Array | None = None
    bin_counts: Array | None = None
    bin_min: Array | None = None
    bin_max: Array | None = None
    histogram: Array | None = None


@dataclass(frozen=True, slots=True)
class StatsPart:
    """One tile's :class:`BandPart` s, one per band."""

    index: int
    bands: list[BandPart]


@dataclass(frozen=True, slots=True)
class BandStats:
    """The merged statistics of one band."""

    band: int
    count: int
    nodata_count: int
    minimum: float
    maximum: float
    mean: float
    std: float
    percentiles: dict[float, float]
    histogram: Array | None
    bin_edges: Array | None
    #: "exact" or "streamed" (see the module docstring for what each guarantees)
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "band": self.band,
            "count": self.count,
            "nodata_count": self.nodata_count,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "percentiles": {str(q): v for q, v in self.percentiles.items()},
            "histogram": None if self.histogram is None else self.histogram.tolist(),
            "bin_edges": None if self.bin_edges is None else self.bin_edges.tolist(),
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """The statistics detector: per band count, nodata count, min, max, mean, std, percentiles.

    Parameters
    ----------
    nodata : float, optional
        Pixels equal to it are left out (NaN always is).
    percentiles : tuple of float
        In 0…100, as ``np.percentile`` takes them.
    bins : int
        Histogram bins.
    range : (float, float), optional
        Histogram range; by default the data's (min, max) — for integers of up
        to 16 bits only (see the module docstring).
    """

    nodata: float | None = None
    percentiles: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
    bins: int = 256
    range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if any(not 0 <= q <= 100 for q in self.percentiles):
            raise UsageError(f"stats: percentiles must be in 0..100, got {self.percentiles}")
        if isinstance(self.bins, bool) or int(self.bins) != self.bins or self.bins < 1:
            raise UsageError(f"stats: bins must be a positive integer, got {self.bins!r}")
        if self.range is not None and not (
            len(self.range) == 2 and float(self.range[0]) < float(self.range[1])
        ):
            raise UsageError(f"stats: range must be LO,HI with LO < HI, got {self.range!r}")

    @property
    def halo(self) -> int:
        """0: every pixel counts once, in the tile whose core holds it."""
        return 0

    def detect(self, image: Array, tile: Tile, image_shape: tuple[int, int]) -> StatsPart:
        """One :class:`BandPart` per band of ``tile``'s core."""
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[:2] != tile.read.shape:
            raise UsageError(
                f"stats: {tile} got an array of {array.shape}, its read window is {tile.read.shape}"
            )
        if array.dtype.kind not in "uif":
            raise UsageError(f"stats measures integer or float pixels, not {array.dtype}")
        core = array[tile.core_in_read.slices]
        return StatsPart(
            tile.index, [self._band(core[:, :, b].ravel()) for b in range(core.shape[2])]
        )

    def _band(self, values: Array) -> BandPart:
        if values.dtype in _EXACT:
            return self._exact_band(values)
        valid = np.ones(values.shape, dtype=bool)
        if values.dtype.kind == "f":
            valid &= ~np.isnan(values)
        if self.nodata is not None:
            valid &= values != self.nodata
        v = values[valid]
        nodata = int(values.size - v.size)
        if not v.size:
            return BandPart(values.dtype, nodata)
        ordered = np.sort(v)
        keys = _bin_keys(ordered)
        starts = np.flatnonzero(np.diff(keys, prepend=keys[0] ^ 1))
        ends = np.append(starts[1:], ordered.size) - 1
        mean = float(np.mean(v, dtype=np.float64))
        hist = None
        if self.range is not None:
            hist = np.histogram(v, self.bins, self.range)[0].astype(np.int64)
        return BandPart(
            values.dtype,
            nodata,
            count=int(v.size),
            mean=mean,
            m2=float(np.sum(np.square(v.astype(np.float64) - mean))),
            minimum=ordered[0],
            maximum=ordered[-1],
            bin_keys=keys[starts],
            bin_counts=np.diff(np.append(starts, ordered.size)).astype(np.int64),
            bin_min=ordered[starts],
            bin_max=ordered[ends],
            histogram=hist,
        )

    def _exact_band(self, values: Array) -> BandPart:
        """Counts of every value between the tile's min and max (integers of up to 16 bits)."""
        counts, shift = _value_counts(values)
        nodata = 0
        if self.nodata is not None and float(self.nodata).is_integer():
            at = int(self.nodata) + shift  # the pixels a `values != nodata` test leaves out
            if 0 <= at < counts.size:
                nodata, counts[at] = int(counts[at]), 0
        present = np.flatnonzero(counts)
        if not present.size:
            return BandPart(values.dtype, nodata, value_counts=np.zeros(0, np.int64))
        first, last = int(present[0]), int(present[-1])
        return BandPart(
            values.dtype,
            nodata,
            # a tile's counts fit 32 bits: half the bytes to send; the merge adds in 64
            value_counts=counts[first : last + 1].astype(
                np.uint32 if values.size < 2**32 else np.int64
            ),
            value_low=first - shift,
        )

    def merger(self, grid: Grid) -> StatsMerge:
        """A merger for the tiles of ``grid``."""
        return StatsMerge(self, grid)


#: Pixels per histogram call: OpenCV returns float32 counts, exact up to 2**24.
_CHUNK = 2**24


def _value_counts(values: Array) -> tuple[Array, int]:
    """Counts of every value of ``values``' dtype (8 or 16 bits), and the shift to the first.

    ``counts[v + shift]`` is how many pixels equal ``v``. OpenCV's histogram of
    8- and 16-bit unsigned pixels with one bin per value counts in integers, about
    five times faster than ``np.bincount`` (which first copies the pixels as int64);
    signed values are counted as their offset binary (the sign bit flipped, an
    order-preserving map onto the unsigned values) and shifted back.
    """
    import cv2  # preloaded in every worker; the statistics' merge does not need it

    bits = values.dtype.itemsize * 8
    unsigned = np.dtype(f"u{values.dtype.itemsize}")
    flat = np.ascontiguousarray(values).reshape(-1)
    shift = 0
    if values.dtype.kind == "i":
        shift = 1 << (bits - 1)
        flat = flat.view(unsigned) ^ unsigned.type(shift)
    else:
        flat = flat.view(unsigned)
    size = 1 << bits
    counts = np.zeros(size, np.int64)
    for start in range(0, flat.size, _CHUNK):
        row = flat[None, start : start + _CHUNK]  # one row: OpenCV walks a column slowly
        counts += cv2.calcHist([row], [0], None, [size], [0, size]).reshape(-1).astype(np.int64)
    return counts, shift


def _bin_keys(values: Array) -> Array:
    """Order-preserving bin numbers: sign, exponent and the top mantissa bits of each value."""
    if values.dtype.kind in "ui" or values.dtype.itemsize > 8:
        values = values.astype(np.float64)
    values = values + values.dtype.type(0)  # -0.0 and 0.0 into one bin
    info = np.finfo(values.dtype)
    bits = values.dtype.itemsize * 8
    unsigned = values.view(np.dtype(f"u{values.dtype.itemsize}")).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(bits - 1)
    mask = np.uint64(np.iinfo(np.dtype(f"u{values.dtype.itemsize}")).max)
    ordered = np.where(unsigned & sign, ~unsigned & mask, unsigned | sign)
    return ordered >> np.uint64(max(0, info.nmant - _MANTISSA_BITS))


def _combine(a: BandPart, b: BandPart) -> BandPart:
    """Two parts of one band as one (associative)."""
    nodata = a.nodata_count + b.nodata_count
    if a.value_counts is not None and b.value_counts is not None:
        if not b.value_counts.size or not a.value_counts.size:
            keep = a if a.value_counts.size else b
            return BandPart(**{**_fields(keep), "nodata_count": nodata})
        low = min(a.value_low, b.value_low)
        high = max(a.value_low + a.value_counts.size, b.value_low + b.value_counts.size)
        counts = np.zeros(high - low, dtype=np.int64)
        for start, part in (
            (a.value_low - low, a.value_counts),
            (b.value_low - low, b.value_counts),
        ):
            counts[start : start + part.size] += part
        return BandPart(a.dtype, nodata, value_counts=counts, value_low=low)
    if not b.count:
        return BandPart(**{**_fields(a), "nodata_count": nodata})
    if not a.count:
        return BandPart(**{**_fields(b), "nodata_count": nodata})
    n = a.count + b.count
    delta = b.mean - a.mean
    assert a.bin_keys is not None  # set whenever count > 0
    assert b.bin_keys is not None
    keys = np.concatenate([a.bin_keys, b.bin_keys])
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.diff(keys, prepend=keys[0] ^ np.uint64(1)))
    hist = None
    if a.histogram is not None and b.histogram is not None:
        hist = a.histogram + b.histogram
    return BandPart(
        a.dtype,
        nodata,
        count=n,
        mean=a.mean + delta * b.count / n,
        m2=a.m2 + b.m2 + delta * delta * a.count * b.count / n,
        minimum=min(a.minimum, b.minimum),
        maximum=max(a.maximum, b.maximum),
        bin_keys=keys[starts],
        bin_counts=np.add.reduceat(np.concatenate([a.bin_counts, b.bin_counts])[order], starts),
        bin_min=np.minimum.reduceat(np.concatenate([a.bin_min, b.bin_min])[order], starts),
        bin_max=np.maximum.reduceat(np.concatenate([a.bin_max, b.bin_max])[order], starts),
        histogram=hist,
    )


def _fields(part: BandPart) -> dict[str, Any]:
    return {name: getattr(part, name) for name in BandPart.__slots__}


@dataclass
class StatsMerge:
    """Adds the tiles' :class:`BandPart` s band by band; :meth:`finish` gives :class:`BandStats`."""

    detector: Stats
    grid: Grid
    _seen: set[int] = field(default_factory=set)
    _bands: list[BandPart] = field(default_factory=list)

    def add(self, part: StatsPart) -> None:
        """Take one tile's parts (a tile done twice counts once)."""
        if part.index in self._seen:
            return
        self._seen.add(part.index)
        bands = part.bands
        if self._bands and len(bands) != len(self._bands):
            raise UsageError(
                f"stats: tile {part.index} has {len(bands)} bands, the others {len(self._bands)}"
            )
        if self._bands:
            bands = [_combine(a, b) for a, b in zip(self._bands, bands, strict=True)]
        self._bands = bands

    def finish(self) -> list[BandStats]:
        """The statistics of every band."""
        missing = len(self.grid) - len(self._seen)
        if missing:
            raise UsageError(f"stats: {missing} of {len(self.grid)} tiles were never merged")
        return [self._result(i, part) for i, part in enumerate(self._bands)]

    def _result(self, band: int, part: BandPart) -> BandStats:
        det = self.detector
        if part.value_counts is not None:
            present = np.flatnonzero(part.value_counts)
            values = (present + part.value_low).astype(part.dtype)
            counts = part.value_counts[present]
            return _exact(band, part, values, counts, det)
        n = part.count
        if not n:
            return _empty(band, part, det, "streamed")
        assert part.bin_counts is not None  # set whenever count > 0
        assert part.bin_min is not None
        assert part.bin_max is not None
        cum = np.cumsum(part.bin_counts)
        bin_min, bin_max, bin_counts = part.bin_min, part.bin_max, part.bin_counts

        def kth(k: int) -> Any:
            i = int(np.searchsorted(cum, k, side="right"))
            lo, hi, c = bin_min[i], bin_max[i], int(bin_counts[i])
            if c == 1 or lo == hi or k == cum[i] - c:
                return lo
            if k == cum[i] - 1:
                return hi
            rank = k - (cum[i] - c)
            return float(lo) + (float(hi) - float(lo)) * rank / (c - 1)

        percentiles = {q: linear_percentile(n, q, kth, np.float64) for q in det.percentiles}
        edges = None
        if det.range is not None:
            edges = np.histogram_bin_edges(np.zeros(0, part.dtype), det.bins, det.range)
        return BandStats(
            band,
            n,
            part.nodata_count,
            _number(part.minimum),
            _number(part.maximum),
            part.mean,
            math.sqrt(part.m2 / n),
            percentiles,
            part.histogram,
            edges,
            "streamed",
        )


def _exact(band: int, part: BandPart, values: Array, counts: Array, det: Stats) -> BandStats:
    if not values.size:
        return _empty(band, part, det, "exact")
    n = int(counts.sum())
    ints = [int(v) for v in values.tolist()]
    weights = [int(c) for c in counts.tolist()]
    s1 = sum(v * c for v, c in zip(ints, weights, strict=True))
    s2 = sum(v * v * c for v, c in zip(ints, weights, strict=True))
    variance = Fraction(n * s2 - s1 * s1, n * n)
    hist, edges = np.histogram(values, det.bins, det.range, weights=counts)
    percentiles = {
        q: linear_percentile(n, q, lambda k: order_statistic(values, counts, k), part.dtype)
        for q in det.percentiles
    }
    return BandStats(
        band,
        n,
        part.nodata_count,
        float(ints[0]),
        float(ints[-1]),
        s1 / n,
        math.sqrt(variance),
        percentiles,
        hist.astype(np.int64),
        edges,
        "exact",
    )


def _empty(band: int, part: BandPart, det: Stats, method: str) -> BandStats:
    nan = math.nan
    return BandStats(
        band, 0, part.nodata_count, nan, nan, nan, nan,
        dict.fromkeys(det.percentiles, nan), None, None, method,
    )  # fmt: skip


def _number(value: Any) -> float:
    return float(value)


def stats_table(bands: list[BandStats]) -> Table:
    """One row per band: count, nodata_count, min, max, mean, std and a column per percentile."""
    table: Table = {
        "band": np.array([b.band for b in bands], dtype=np.int64),
        "count": np.array([b.count for b in bands], dtype=np.int64),
        "nodata_count": np.array([b.nodata_count for b in bands], dtype=np.int64),
        "min": np.array([b.minimum for b in bands], dtype=np.float64),
        "max": np.array([b.maximum for b in bands], dtype=np.float64),
        "mean": np.array([b.mean for b in bands], dtype=np.float64),
        "std": np.array([b.std for b in bands], dtype=np.float64),
    }
    for q in bands[0].percentiles if bands else ():
        table[f"p{q:g}"] = np.array([b.percentiles[q] for b in bands], dtype=np.float64)
    return table
