"""Value conversions: ``to_dtype`` (pointwise, tileable) and ``normalize`` (whole-image).

``normalize`` uses statistics of the whole image (percentiles), so a tile
would see different statistics than the whole image: it is marked
``whole_image=True``, so tiled runs refuse it while ``tilewise batch`` runs it
on each whole image.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops._bands import REAL_DTYPES, to_float32
from tilewise.ops.base import BoundOp, OpDefinition, Param, register
from tilewise.ops.nodata import holds, keep_rule, nan_rule

__all__ = ["normalize", "to_dtype"]

Array = npt.NDArray[Any]

_TARGETS = ("uint8", "uint16", "float32")
#: ``to_dtype:scale=auto``: scikit-image's conversions (imported when first used).
_AUTO = {"uint8": "img_as_ubyte", "uint16": "img_as_uint", "float32": "img_as_float32"}


def _pair(op_name: str, key: str, text: Any) -> tuple[float, float]:
    low, sep, high = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        pair = (float(low), float(high))
    except ValueError:
        raise OpError(
            f"{op_name}: {key} must look like LOW:HIGH, e.g. 1:99, got {text!r}"
        ) from None
    if not pair[0] < pair[1]:
        raise OpError(f"{op_name}: {key} needs LOW < HIGH, got {text}")
    return pair


def to_dtype(image: Array, dtype: str = "float32", scale: str = "none") -> Array:
    """Convert to ``dtype`` (uint8, uint16 or float32; default float32).

    ``scale=none`` (default) keeps the values: integers are clipped to the
    target's range, floats are rounded to the nearest integer first and NaN
    becomes 0 — ``np.clip(np.rint(image), MIN, MAX).astype(dtype)``; a float
    target is ``image.astype(float32)``. ``scale=auto`` maps the full range
    of the input type onto the target's like scikit-image:
    ``skimage.util.img_as_ubyte`` / ``img_as_uint`` / ``img_as_float32``
    (floats are expected in [0, 1], or [-1, 1]).
    """
    if dtype not in _TARGETS:
        raise OpError(f"to_dtype: dtype must be one of {', '.join(_TARGETS)}; got {dtype!r}")
    if scale == "auto":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from skimage import util as skutil

                return np.asarray(getattr(skutil, _AUTO[dtype])(image))
        except ValueError as err:
            lo, hi = float(np.nanmin(image)), float(np.nanmax(image))
            raise OpError(
                f"to_dtype: scale=auto maps {image.dtype.name} images in [0, 1] to {dtype}, but "
                f"this one holds values in [{lo:g}, {hi:g}] ({err}); add --op normalize before "
                "it, or use scale=none"
            ) from err
    if scale != "none":
        raise OpError(f"to_dtype: scale must be none or auto, got {scale!r}")
    target = np.dtype(dtype)
    if target.kind == "f":
        return image.astype(target)
    info = np.iinfo(target)
    values: Array = image
    if image.dtype.kind == "f":
        values = np.rint(np.nan_to_num(image, nan=0.0))
    return np.clip(values, info.min, info.max).astype(target)


def normalize(image: Array, percentiles: str = "0:100", out_range: str = "0:1") -> Array:
    """Stretch intensities: the ``percentiles`` LOW:HIGH of the image go to ``out_range`` A:B.

    The percentiles are taken over every pixel and band of the image (``0:100``,
    the default, is min/max; ``1:99`` ignores outliers). The result is float32,
    clipped to A:B. Equals ``skimage.exposure.rescale_intensity(image.astype(float32),
    in_range=tuple(np.percentile(image, (LOW, HIGH))), out_range=(A, B))``.
    Add ``to_dtype:dtype=uint8`` after ``out_range=0:255`` for an 8-bit result.
    """
    p_low, p_high = _percentiles(percentiles)
    floats = image.astype(np.float32)
    in_low, in_high = (float(v) for v in np.percentile(floats, (p_low, p_high)))
    return _stretch(floats, in_low, in_high, out_range)


def _percentiles(text: str) -> tuple[float, float]:
    p_low, p_high = _pair("normalize", "percentiles", text)
    if p_low < 0 or p_high > 100:
        raise OpError(f"normalize: percentiles must lie in 0:100, got {text}")
    return p_low, p_high


def _stretch(floats: Array, in_low: float, in_high: float, out_range: str) -> Array:
    low, high = _pair("normalize", "out_range", out_range)
    with np.errstate(divide="ignore", invalid="ignore"):
        from skimage import exposure

        result = exposure.rescale_intensity(
            floats, in_range=(in_low, in_high), out_range=(low, high)
        )
    return np.asarray(result, dtype=np.float32)


def to_dtype_masked(
    image: Array, valid: Array, dtype: str = "float32", scale: str = "none"
) -> tuple[Array, Array]:
    """``to_dtype`` of the valid pixels; nodata stays nodata.

    With ``scale=auto`` the ranges are mapped as without nodata (nodata pixels are
    given 0 first, so a float image's nodata value does not have to lie in [0, 1]).
    """
    filled = np.where(valid, image, 0).astype(image.dtype) if scale == "auto" else image
    return to_dtype(filled, dtype, scale), valid


def _to_dtype_nodata(
    value: float | None,
    in_dtype: np.dtype[Any],
    out_dtype: np.dtype[Any],
    scale: str = "none",
    **_: Any,
) -> float | None:
    """``scale=none`` keeps the value if the target holds it; ``scale=auto`` maps it."""
    if value is None or scale != "auto":
        return keep_rule(value, in_dtype, out_dtype)
    if not holds(in_dtype, value):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mapped = to_dtype(np.array([value], dtype=in_dtype), out_dtype.name, scale)
    except OpError:
        return keep_rule(value, in_dtype, out_dtype)
    return float(mapped[0])


def normalize_masked(
    image: Array, valid: Array, percentiles: str = "0:100", out_range: str = "0:1"
) -> tuple[Array, Array]:
    """``normalize`` with the percentiles taken over the valid pixels only."""
    p_low, p_high = _percentiles(percentiles)
    if not valid.any():
        return np.zeros(image.shape, dtype=np.float32), valid
    floats = image.astype(np.float32)
    low, high = (float(v) for v in np.percentile(floats[valid], (p_low, p_high)))
    filled = np.where(valid, floats, np.float32(low))  # nodata pixels hold any in-range value
    return _stretch(filled, low, high, out_range), valid


@dataclass(frozen=True, slots=True)
class _Fixed:
    """A picklable dtype rule returning one dtype."""

    dtype: np.dtype[Any]

    def __call__(self, _: np.dtype[Any]) -> np.dtype[Any]:
        return self.dtype


@dataclass(frozen=True)
class _DtypeFromParam(OpDefinition):
    """An op whose output dtype is its ``dtype`` parameter.

    The contract's dtype rule sees only the input dtype, so binding returns a
    definition whose rule is fixed to the chosen dtype (workers rebind by
    name, and never need the rule).
    """

    def bind(self, **params: Any) -> BoundOp:
        bound = OpDefinition.bind(self, **params)
        target = str(bound.params["dtype"])
        if target not in _TARGETS:
            raise OpError(f"to_dtype: dtype must be one of {', '.join(_TARGETS)}; got {target!r}")
        fixed = replace(self, dtype=_Fixed(np.dtype(target)))
        return BoundOp(fixed, bound.params, bound.halo)


register(
    _DtypeFromParam(
        name="to_dtype",
        func=to_dtype,
        dtypes=REAL_DTYPES,
        params=(
            Param("dtype", str, "float32", help="uint8, uint16 or float32"),
            Param("scale", str, "none", help="none (keep values, clip) or auto (map ranges)"),
        ),
        equals="np.clip(np.rint(x), MIN, MAX).astype(dtype); scale=auto: skimage.util.img_as_*",
        summary="convert the pixel type (clip, or map ranges with scale=auto)",
        masked=to_dtype_masked,
        nodata_rule=_to_dtype_nodata,
    )
)
register(
    OpDefinition(
        name="normalize",
        func=normalize,
        dtypes=REAL_DTYPES,
        dtype=to_float32,
        params=(
            Param("percentiles", str, "0:100", help="LOW:HIGH percentiles of the image"),
            Param("out_range", str, "0:1", help="A:B they are mapped to"),
        ),
        equals="skimage.exposure.rescale_intensity(in_range=np.percentile(image, (LOW, HIGH)))",
        summary="stretch percentiles LOW:HIGH to A:B (float32; whole images only)",
        masked=normalize_masked,
        nodata_rule=nan_rule,
        whole_image=True,
    )
)
