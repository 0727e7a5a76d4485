"""Helpers shared by op families: band handling and dtype rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError

Array = npt.NDArray[Any]

OPENCV_MAX_BANDS = 4
#: Every real pixel type: what ops written with plain NumPy arithmetic take.
REAL_DTYPES = (
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
)


def per_band(func: Callable[[Array], Array], image: Array, *, max_bands: int = 1) -> Array:
    """Apply ``func`` to the whole image if it has at most ``max_bands`` bands, else band by band.

    Band-by-band results are stacked back into an interleaved ``(H, W, C)`` array.
    """
    if image.ndim == 2 or image.shape[2] <= max_bands:
        return func(np.ascontiguousarray(image))
    bands = [func(np.ascontiguousarray(image[..., b])) for b in range(image.shape[2])]
    return np.stack(bands, axis=-1)


def odd_size(op_name: str, size: int) -> int:
    """Check a window size is a positive odd integer."""
    if size < 1 or size % 2 == 0:
        raise OpError(f"{op_name}: size must be a positive odd number, got {size}")
    return size


def check_dtype(op_name: str, image: Array, allowed: tuple[str, ...]) -> None:
    """Raise :class:`OpError` naming the op if ``image.dtype`` is not in ``allowed``."""
    if image.dtype.name not in allowed:
        raise OpError(
            f"{op_name} does not support {image.dtype.name} images "
            f"(supported: {', '.join(allowed)}); convert first, e.g. --op to_dtype:dtype=float32"
        )


def is_float(image: Array) -> bool:
    """Whether the image holds floating-point pixels."""
    return bool(np.issubdtype(image.dtype, np.floating))


def to_uint8(_: np.dtype[Any]) -> np.dtype[Any]:
    """Dtype rule: the output is always uint8."""
    return np.dtype(np.uint8)


def to_float32(_: np.dtype[Any]) -> np.dtype[Any]:
    """Dtype rule: the output is always float32."""
    return np.dtype(np.float32)


def one_band(_: int) -> int:
    """Band rule: the output has one band."""
    return 1
