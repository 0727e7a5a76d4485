"""User ops for the verify and user-op tests (module level, so workers can import them)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy import ndimage

import tilewise

Array = np.ndarray[Any, Any]


@tilewise.op(halo=2)
def max9_halo2(image: Array) -> Array:
    """A 9 x 9 maximum declared with too small a halo (it needs 4)."""
    return np.asarray(ndimage.maximum_filter(image, size=9, mode="nearest"))


def local_max(image: Array, size: int = 3) -> Array:
    """An undecorated maximum filter: its halo comes from ``halo=`` or a partial's keywords."""
    return np.asarray(ndimage.maximum_filter(image, size=size, mode="nearest"))


def tile_normalized(image: Array) -> Array:
    """Scaled by the tile's own maximum: depends on where the tile lies."""
    return (image.astype(np.float64) * 200 / max(1, int(image.max()))).astype(image.dtype)


def undeclared_float(image: Array, log: str = "") -> Array:
    """Returns float64 without declaring it; appends a line to ``log`` on every call."""
    if log:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    return image.astype(np.float64)


class Offset:
    """A callable object (travels to workers by value)."""

    def __init__(self, by: int) -> None:
        self.by = by

    def __call__(self, image: Array) -> Array:
        return image // 2 + self.by
