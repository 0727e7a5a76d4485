"""SAR ops: ``db`` and ``linear`` (intensity scales), ``lee`` (speckle filter).

All three output float32. Without a nodata value, NaN inputs stay NaN
(``lee``: a NaN inside a pixel's window makes that pixel NaN) and ``db`` gives
NaN for ``x <= 0``. With one (:mod:`tilewise.ops.nodata`), nodata pixels stay
nodata, ``db``/``linear`` make undefined results nodata too (their output's
nodata value is NaN unless ``--dst-nodata`` says otherwise), and ``lee`` takes
its local mean and variance over the valid pixels of each window.

``lee`` is exact under tiling because its two box means are separable
``scipy.ndimage.correlate1d`` passes in float64 with an explicit ``1/size``
kernel: every output pixel sums the same products in the same order wherever
its tile starts. Running-sum box filters (``uniform_filter``, ``cv2.blur``) do
not: their sums depend on where the window starts (see docs/design/exactness.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops._bands import odd_size, per_band, to_float32
from tilewise.ops.base import OpDefinition, Param, register
from tilewise.ops.nodata import nan_rule, per_band_masked

Array = npt.NDArray[Any]


def db(image: Array) -> Array:
    """Intensity to decibels: ``10 * log10(x)``, float32; ``x <= 0`` (and NaN) give NaN.

    Computed in float64 and rounded once to float32, so it equals
    ``(10 * numpy.log10(x.astype(float64))).astype(float32)`` exactly, and a float32
    NumPy computation within 1 ulp.
    """
    x = image.astype(np.float64)
    with np.errstate(all="ignore"):
        out = (10.0 * np.log10(x)).astype(np.float32)
    out[~(x > 0)] = np.nan
    return out


def linear(image: Array) -> Array:
    """Decibels to intensity: ``10 ** (x / 10)``, float32 (the inverse of ``db``).

    Computed in float64 and rounded once to float32. NaN stays NaN; values above
    about 385 dB, beyond float32's range, give NaN rather than infinity.
    """
    x = image.astype(np.float64)
    with np.errstate(all="ignore"):
        out = np.power(10.0, x / 10.0).astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def _box_mean(x: Array, size: int) -> Array:
    from scipy import ndimage

    weights = np.full(size, 1.0 / size)
    rows = ndimage.correlate1d(x, weights, axis=0, mode="mirror")
    return ndimage.correlate1d(rows, weights, axis=1, mode="mirror")


def _lee_band(band: Array, size: int, looks: float) -> Array:
    x = band.astype(np.float64)
    mean = _box_mean(x, size)
    variance = np.maximum(_box_mean(x * x, size) - mean * mean, 0.0)
    cu2 = 1.0 / looks
    with np.errstate(divide="ignore", invalid="ignore"):
        ci2 = variance / (mean * mean)
        weight = np.maximum(0.0, (1.0 - cu2 / ci2) / (1.0 + cu2))
    out = mean + weight * (x - mean)
    out[mean == 0] = 0.0
    return out.astype(np.float32)


def lee(image: Array, size: int = 7, looks: float = 1.0) -> Array:
    """Lee (1980) speckle filter, noise from the equivalent number of looks, float32.

    Over a ``size`` x ``size`` window (mirrored border, as
    ``scipy.ndimage``'s ``mode="mirror"``): local mean m and variance
    v = mean(x²) − m² (clamped at 0); Cu² = 1/looks; Ci² = v/m²;
    w = max(0, (1 − Cu²/Ci²) / (1 + Cu²)); out = m + w·(x − m); where m = 0,
    out = 0. Band by band, in float64, rounded once to float32.

    Equals the same formula with ``scipy.ndimage.uniform_filter(mode="mirror")``
    on the whole image within ``rtol=1e-5``: the two box means sum in a different
    order (a few float64 ulps), and v subtracts two close numbers where the
    window is nearly flat, which can magnify those ulps before w clamps at 0;
    the float32 rounding of the output is 6e-8. Tiled results are bit-identical
    to whole-image results (module docstring).
    """
    odd_size("lee", size)
    if not looks > 0:
        raise OpError(f"lee: looks must be positive, got {looks}")
    return per_band(lambda band: _lee_band(band, size, looks), image)


def db_masked(image: Array, valid: Array) -> tuple[Array, Array]:
    """``db`` of the valid pixels; ``x <= 0`` is nodata too."""
    out = db(image)
    return out, valid & ~np.isnan(out)


def linear_masked(image: Array, valid: Array) -> tuple[Array, Array]:
    """``linear`` of the valid pixels; a result beyond float32 is nodata too."""
    out = linear(image)
    return out, valid & ~np.isnan(out)


def _lee_band_masked(band: Array, valid: Array, size: int, looks: float) -> tuple[Array, Array]:
    weights = valid.astype(np.float64)
    x = np.where(valid, band, 0).astype(np.float64)
    count = _box_mean(weights, size)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.where(valid, count, 1.0)
        mean = _box_mean(x, size) * scale
        variance = np.maximum(_box_mean(x * x, size) * scale - mean * mean, 0.0)
        cu2 = 1.0 / looks
        ci2 = variance / (mean * mean)
        weight = np.maximum(0.0, (1.0 - cu2 / ci2) / (1.0 + cu2))
        out = mean + weight * (x - mean)
    out[(mean == 0) | ~valid] = 0.0
    return out.astype(np.float32), valid


def lee_masked(
    image: Array, valid: Array, size: int = 7, looks: float = 1.0
) -> tuple[Array, Array]:
    """``lee`` over valid pixels: m and mean(x²) are the window's sums over its valid pixels
    divided by their count (box sums of ``x * valid``, ``x² * valid`` and ``valid``)."""
    odd_size("lee", size)
    if not looks > 0:
        raise OpError(f"lee: looks must be positive, got {looks}")
    return per_band_masked(lambda band, ok: _lee_band_masked(band, ok, size, looks), image, valid)


register(
    OpDefinition(
        name="db",
        func=db,
        dtype=to_float32,
        params=(),
        equals="10 * numpy.log10(x) in float64, as float32; x <= 0 -> NaN",
        summary="intensity to decibels (float32, NaN where x <= 0)",
        masked=db_masked,
        nodata_rule=nan_rule,
    )
)
register(
    OpDefinition(
        name="linear",
        func=linear,
        dtype=to_float32,
        params=(),
        equals="10 ** (x / 10) in float64, as float32",
        summary="decibels to intensity (float32), the inverse of db",
        masked=linear_masked,
        nodata_rule=nan_rule,
    )
)
register(
    OpDefinition(
        name="lee",
        func=lee,
        dtype=to_float32,
        halo=lambda size=7, looks=1.0: size // 2,
        halo_rule="size // 2",
        params=(
            Param("size", int, 7, help="odd window size", rule="odd"),
            Param("looks", float, 1.0, help="equivalent number of looks", rule="positive"),
        ),
        equals="Lee (1980) with scipy.ndimage.uniform_filter(mode='mirror') means, rtol 1e-5",
        summary="Lee speckle filter from the number of looks (float32)",
        masked=lee_masked,
    )
)
