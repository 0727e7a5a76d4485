"""Integer-scale user ops for the scale tests (module level, so workers can import them)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

import tilewise

Array = np.ndarray[Any, Any]


def _resize(image: Array, factor: float, interpolation: int) -> Array:
    h, w = image.shape[:2]
    size = (round(w * factor), round(h * factor))
    return np.asarray(cv2.resize(image, size, interpolation=interpolation))


def _block_mean(image: Array, k: int) -> Array:
    """k x k block means: OpenCV INTER_AREA for integers; NumPy for floats, where OpenCV's
    SIMD tail rounds differently and so is not translation-invariant."""
    if image.dtype.kind != "f":
        return _resize(image, 1 / k, cv2.INTER_AREA)
    h, w = image.shape[:2]
    blocks = image.reshape(h // k, k, w // k, k, *image.shape[2:])
    return blocks.mean(axis=(1, 3), dtype=np.float32).astype(image.dtype)


@tilewise.op(scale=(1, 2))
def halve(image: Array) -> Array:
    """2 x 2 block means."""
    return _block_mean(image, 2)


@tilewise.op(scale=(1, 4))
def quarter(image: Array) -> Array:
    """4 x 4 block means."""
    return _block_mean(image, 4)


@tilewise.op(scale=(2, 1))
def double_nearest(image: Array) -> Array:
    """Each pixel becomes 2 x 2."""
    return _resize(image, 2, cv2.INTER_NEAREST)


@tilewise.op(halo=1, scale=(2, 1))
def double_linear(image: Array) -> Array:
    """Bilinear 2x enlargement (reads one neighbour on each side)."""
    return _resize(image, 2, cv2.INTER_LINEAR)


@tilewise.op(halo=1, scale=(3, 1))
def triple_linear(image: Array) -> Array:
    """Bilinear 3x enlargement. (OpenCV's INTER_CUBIC is not used: on uint8 it is not
    translation-invariant — a few pixels of a crop differ by one grey level.)"""
    return _resize(image, 3, cv2.INTER_LINEAR)
