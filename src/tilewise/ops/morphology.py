"""Grey-level morphology with a square structuring element: erode, dilate, opening, closing.

Minimum and maximum are exact in every dtype, so OpenCV's kernels tile exactly.
Outside the image OpenCV ignores pixels (its default morphology border), which
equals ``scipy.ndimage.grey_erosion``/``grey_dilation`` with ``mode="nearest"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.ops._bands import OPENCV_MAX_BANDS, check_dtype, odd_size, per_band
from tilewise.ops.base import OpDefinition, Param, register

Array = npt.NDArray[Any]
_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
_MORPH = {"opening": "MORPH_OPEN", "closing": "MORPH_CLOSE"}


def _kernel(size: int) -> Array:
    return np.ones((size, size), dtype=np.uint8)


def erode(image: Array, size: int) -> Array:
    """Grey erosion (local minimum) over ``size`` x ``size``: ``cv2.erode(image, ones((size, size)))``."""  # noqa: E501
    import cv2

    check_dtype("erode", image, _DTYPES)
    kernel = _kernel(odd_size("erode", size))
    return per_band(lambda b: cv2.erode(b, kernel), image, max_bands=OPENCV_MAX_BANDS)


def dilate(image: Array, size: int) -> Array:
    """Grey dilation (local maximum) over ``size`` x ``size``: ``cv2.dilate(image, ones((size, size)))``."""  # noqa: E501
    import cv2

    check_dtype("dilate", image, _DTYPES)
    kernel = _kernel(odd_size("dilate", size))
    return per_band(lambda b: cv2.dilate(b, kernel), image, max_bands=OPENCV_MAX_BANDS)


def _morph(name: str, image: Array, size: int) -> Array:
    import cv2

    check_dtype(name, image, _DTYPES)
    kernel = _kernel(odd_size(name, size))
    code = getattr(cv2, _MORPH[name])
    return per_band(lambda b: cv2.morphologyEx(b, code, kernel), image, max_bands=OPENCV_MAX_BANDS)


def opening(image: Array, size: int) -> Array:
    """Erosion then dilation: ``cv2.morphologyEx(image, cv2.MORPH_OPEN, ones((size, size)))``."""
    return _morph("opening", image, size)


def closing(image: Array, size: int) -> Array:
    """Dilation then erosion: ``cv2.morphologyEx(image, cv2.MORPH_CLOSE, ones((size, size)))``."""
    return _morph("closing", image, size)


def _register(name: str, func: Any, halo: Any, equals: str, summary: str) -> None:
    register(
        OpDefinition(
            name=name,
            func=func,
            halo=halo,
            halo_rule="2 * (size // 2)" if name in _MORPH else "size // 2",
            params=(Param("size", int, help="odd structuring element size", rule="odd"),),
            equals=equals,
            summary=summary,
            dtypes=_DTYPES,
        )
    )


_register("erode", erode, lambda size: size // 2, "cv2.erode", "local minimum")
_register("dilate", dilate, lambda size: size // 2, "cv2.dilate", "local maximum")
_register(
    "opening",
    opening,
    lambda size: 2 * (size // 2),
    "cv2.morphologyEx(MORPH_OPEN)",
    "erosion then dilation",
)
_register(
    "closing",
    closing,
    lambda size: 2 * (size // 2),
    "cv2.morphologyEx(MORPH_CLOSE)",
    "dilation then erosion",
)
