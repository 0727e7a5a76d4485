"""Nodata as missing: how ops leave nodata pixels out, and what value marks them in the output.

When an image has a nodata value, a pipeline carries a boolean ``valid`` array
beside the pixels (the same shape: one flag per pixel and band). It starts as
``image != nodata`` (NaN pixels of a float image are not valid either) and each
op maps it with its ``masked(image, valid, **params) -> (image, valid)``
function: the values of pixels that are not valid are never read, and the op
says which output pixels are valid. After the last op, every pixel that is not
valid is set to the output's nodata value. Between ops no value stands for
nodata, so no intermediate value can be mistaken for it.

What each op family does (docs/nodata.md has the table):

* linear filters (``gaussian``, ``mean``) are **normalized convolutions**:
  ``filter(x * valid) / filter(valid)``, in float64 — the weights of the valid
  pixels of the window, renormalized; ``lee``'s local mean and variance are
  weighted the same way; ``median`` is the median of the valid pixels of the
  window (the lower middle one when their count is even), and morphology the
  minimum/maximum of them. A valid pixel is its own neighbour, so the valid
  pixels out are the valid pixels in: nodata does not spread and is not filled.
* pointwise ops map a valid pixel alone; ``db``, ``linear`` and ``expr`` also
  make a pixel nodata where their result is undefined (``x <= 0`` for ``db``);
  ``expr`` and ``grayscale`` give nodata where any band they read is nodata.
* ``resize`` by an integer factor with ``area`` averages the valid pixels of
  each block (a block without one is nodata); ``nearest`` moves the flags with
  the pixels.

The output's nodata value is ``--dst-nodata`` when given; otherwise each op maps
the input's value by its rule: kept when the output dtype holds it exactly
(:func:`keep_rule`), NaN for ops whose values have another meaning (``db``,
``linear``, ``sobel``), the ``nodata=`` parameter of ``expr``, and none for
``threshold``, whose 0/255 output needs a value chosen with ``--dst-nodata``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "as_dtype",
    "fits",
    "holds",
    "keep_rule",
    "nan_rule",
    "no_value_rule",
    "normalized",
    "per_band_masked",
    "valid_mask",
]

Array = npt.NDArray[Any]


def valid_mask(image: Array, nodata: float) -> Array:
    """Where ``image`` holds data: not ``nodata``, and not NaN in a float image.

    >>> valid_mask(np.array([0.0, 1.0, np.nan]), 0).tolist()
    [False, True, False]
    """
    if image.dtype.kind == "f":
        valid = ~np.isnan(image)
        if not math.isnan(nodata):
            valid &= image != nodata
        return valid
    if math.isnan(nodata) or not holds(image.dtype, nodata):
        return np.ones(image.shape, dtype=bool)  # no pixel of this type can hold it
    return np.asarray(image != nodata)


def holds(dtype: np.dtype[Any], value: float) -> bool:
    """Whether pixels of ``dtype`` can hold ``value`` exactly (NaN only in float types).

    >>> holds(np.dtype("uint8"), 255), holds(np.dtype("uint8"), -1), holds(np.dtype("float32"), 0.1)
    (True, False, False)
    """
    dtype = np.dtype(dtype)
    if math.isnan(value):
        return dtype.kind == "f"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    if dtype.kind == "f":
        with np.errstate(all="ignore"):
            return bool(float(np.array(value).astype(dtype)) == value)
    return False


def fits(dtype: np.dtype[Any], value: float) -> bool:
    """Whether ``value`` lies in the range of ``dtype`` (whole numbers for integer types).

    Looser than :func:`holds`: ``0.1`` fits float32, whose pixels hold the nearest value.

    >>> fits(np.dtype("float32"), 0.1), fits(np.dtype("uint8"), 256), fits(np.dtype("int16"), 1.5)
    (True, False, False)
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return math.isnan(value) or float(info.min) <= value <= float(info.max)
    if dtype.kind in "iu" and float(value).is_integer():
        ints = np.iinfo(dtype)
        return bool(ints.min <= value <= ints.max)
    return False


def keep_rule(value: float | None, _: np.dtype[Any], out_dtype: np.dtype[Any]) -> float | None:
    """The default rule: the value is kept when the output holds it, else NaN for floats.

    >>> keep_rule(0.0, np.dtype("uint16"), np.dtype("float32"))
    0.0
    >>> keep_rule(-1, np.dtype("int16"), np.dtype("uint8")) is None
    True
    """
    if value is None:
        return None
    if holds(out_dtype, value):
        return float(value)
    return math.nan if np.dtype(out_dtype).kind == "f" else None


def nan_rule(*_: Any, **__: Any) -> float | None:
    """Rule of ops whose output values mean something else (decibels, gradients): NaN."""
    return math.nan


def no_value_rule(*_: Any, **__: Any) -> float | None:
    """Rule of ops whose every output value is meaningful: the user must choose one."""
    return None


def per_band_masked(
    func: Callable[[Array, Array], tuple[Array, Array]], image: Array, valid: Array
) -> tuple[Array, Array]:
    """Apply ``func(band, valid_band)`` to each band; stack the results back."""
    if image.ndim == 2:
        return func(np.ascontiguousarray(image), np.ascontiguousarray(valid))
    results = [
        func(np.ascontiguousarray(image[..., b]), np.ascontiguousarray(valid[..., b]))
        for b in range(image.shape[2])
    ]
    return (
        np.stack([r[0] for r in results], axis=-1),
        np.stack([r[1] for r in results], axis=-1),
    )


def normalized(smooth: Callable[[Array], Array], band: Array, valid: Array) -> tuple[Array, Array]:
    """Normalized convolution: ``smooth(x * valid) / smooth(valid)`` in float64, and ``valid``.

    ``smooth`` is a linear filter of float64 arrays whose weights are positive
    over its window, so every valid pixel has a positive weight sum (its own).
    """
    weights = valid.astype(np.float64)
    values = np.where(valid, band, 0).astype(np.float64)
    total = smooth(values)
    weight = smooth(weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / np.where(valid, weight, 1.0)
    return as_dtype(mean, band.dtype, valid), valid


def as_dtype(values: Array, dtype: np.dtype[Any], valid: Array) -> Array:
    """Float64 ``values`` in ``dtype``: rounded half to even and clipped for integer types.

    Pixels that are not valid are set to 0 (they are replaced by the nodata value at the end).
    """
    values = np.where(valid, values, 0.0)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)
