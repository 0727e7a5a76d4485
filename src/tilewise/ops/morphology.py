"""Grey-level morphology with a square structuring element: erode, dilate, opening, closing.

Minimum and maximum are exact in every dtype, so OpenCV's kernels tile exactly.
Outside the image OpenCV ignores pixels (its default morphology border), which
equals ``scipy.ndimage.grey_erosion``/``grey_dilation`` with ``mode="nearest"``.

With nodata (:mod:`tilewise.ops.nodata`) the minimum and maximum are taken over
the valid pixels of the window: nodata pixels are given the type's largest
value (erosion) or smallest (dilation), which never wins over a valid one; a
valid pixel is in its own window, so nodata stays exactly where it was.
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


def _extreme(dtype: np.dtype[Any], largest: bool) -> Any:
    if dtype.kind == "f":
        return dtype.type(np.inf if largest else -np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.max if largest else info.min)


def _erode_valid(image: Array, valid: Array, size: int) -> Array:
    filled = np.where(valid, image, _extreme(image.dtype, largest=True))
    return erode(filled, size)


def _dilate_valid(image: Array, valid: Array, size: int) -> Array:
    filled = np.where(valid, image, _extreme(image.dtype, largest=False))
    return dilate(filled, size)


def erode_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``erode`` over the valid pixels of each window."""
    return _erode_valid(image, valid, size), valid


def dilate_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``dilate`` over the valid pixels of each window."""
    return _dilate_valid(image, valid, size), valid


def opening_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``opening``: erosion then dilation, each over the valid pixels."""
    return _dilate_valid(_erode_valid(image, valid, size), valid, size), valid


def closing_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``closing``: dilation then erosion, each over the valid pixels."""
    return _erode_valid(_dilate_valid(image, valid, size), valid, size), valid


_MASKED = {
    "erode": erode_masked,
    "dilate": dilate_masked,
    "opening": opening_masked,
    "closing": closing_masked,
}


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
            masked=_MASKED[name],
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
