"""Point ops (no halo): threshold, invert, grayscale.

With nodata (:mod:`tilewise.ops.nodata`), each maps valid pixels alone and
nodata stays nodata; ``grayscale`` gives nodata where any of the bands it
combines is nodata. ``invert`` sends the nodata value where it sends pixels;
``threshold``'s 0/255 output has no free value, so ``--dst-nodata`` chooses it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops._bands import REAL_DTYPES, to_uint8
from tilewise.ops.base import OpDefinition, Param, register
from tilewise.ops.nodata import no_value_rule

Array = npt.NDArray[Any]


#: Integer dtypes ``cv2.compare`` takes (it writes 0/255 uint8 in one pass).
_CV2_COMPARE_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "int32"})


def threshold(image: Array, value: float) -> Array:
    """255 where ``image > value``, else 0, as uint8, band by band.

    Equals ``cv2.threshold(image, value, 255, cv2.THRESH_BINARY)[1]`` cast to uint8.
    """
    if image.dtype.kind in "iu" and math.isfinite(value):
        # For integers, x > value exactly when x > floor(value): compare in the image's own
        # type (a float comparison would first convert every pixel to float64).
        cut = math.floor(value)
        info = np.iinfo(image.dtype)
        if cut < info.min or cut >= info.max:
            return np.full(image.shape, 255 if cut < info.min else 0, np.uint8)
        if image.dtype.name in _CV2_COMPARE_DTYPES and image.size:
            import cv2

            # elementwise, so bands may be columns: one channel, whatever the band count
            flat = np.ascontiguousarray(image).reshape(image.shape[0], -1)
            # OpenCV's stubs lack the overload with a number as src2
            binary = cv2.compare(flat, float(cut), cv2.CMP_GT)  # type: ignore[call-overload]
            return np.asarray(binary).reshape(image.shape)
        binary = np.greater(image, image.dtype.type(cut)).view(np.uint8)
    else:
        binary = np.greater(image, value).view(np.uint8)
    # A boolean array is one byte per element, 0 or 1: scaling it in place is ~15x
    # faster than np.where with scalar branches, and equal to it (NaN > v is False).
    binary *= np.uint8(255)
    return binary


def invert(image: Array) -> Array:
    """Invert intensities: ``skimage.util.invert(image)`` (``max - x`` for unsigned integers)."""
    from skimage import util as skutil

    return np.asarray(skutil.invert(image))


def grayscale(image: Array) -> Array:
    """RGB(A) to one band with ITU-R BT.601 weights: ``cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)``.

    Integer images use OpenCV's fixed-point conversion. Float images compute
    ``0.299 R + 0.587 G + 0.114 B`` in float32 with NumPy, which is
    position-independent (OpenCV's float path rounds differently at SIMD tails).
    A one-band image is already gray: it comes back as it is, so collections of
    mixed RGB and gray images go through the same pipeline.
    """
    import cv2

    bands = 1 if image.ndim == 2 else image.shape[2]
    if bands == 1:
        return image
    gray_bands(bands)
    if np.issubdtype(image.dtype, np.floating):
        rgb = image[..., :3].astype(np.float32, copy=False)
        gray = rgb[..., 0] * np.float32(0.299)
        gray += rgb[..., 1] * np.float32(0.587)
        gray += rgb[..., 2] * np.float32(0.114)
        return gray.astype(image.dtype, copy=False)
    code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
    if image.dtype not in (np.uint8, np.uint16):
        raise OpError(f"grayscale does not support {image.dtype.name} images")
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(image), code))


def _pointwise(func: Any) -> Any:
    """The masked form of a pointwise op that keeps the band count: the flags stay."""

    def masked(image: Array, valid: Array, **params: Any) -> tuple[Array, Array]:
        return func(image, **params), valid

    masked.__name__ = f"{func.__name__}_masked"
    masked.__qualname__ = masked.__name__
    return masked


threshold_masked = _pointwise(threshold)
invert_masked = _pointwise(invert)


def _invert_nodata(value: float | None, dtype: np.dtype[Any], *_: Any) -> float | None:
    """``invert`` sends the nodata value where it sends a pixel of that value."""
    from tilewise.ops.nodata import holds

    if value is None or not holds(dtype, value):
        return None
    return float(invert(np.array([value], dtype=dtype))[0])


def grayscale_masked(image: Array, valid: Array) -> tuple[Array, Array]:
    """``grayscale``; a pixel is nodata where any band it combines is nodata."""
    if image.ndim == 2 or image.shape[2] == 1:
        return image, valid
    return grayscale(image), np.asarray(valid[..., :3].all(axis=-1))


register(
    OpDefinition(
        name="threshold",
        func=threshold,
        dtypes=REAL_DTYPES,
        dtype=to_uint8,
        params=(Param("value", float, help="pixels above this become 255"),),
        equals="cv2.threshold(THRESH_BINARY, maxval=255) as uint8",
        summary="binary threshold to 0/255 uint8",
        masked=threshold_masked,
        nodata_rule=no_value_rule,
    )
)
register(
    OpDefinition(
        name="invert",
        func=invert,
        dtypes=REAL_DTYPES,
        params=(),
        equals="skimage.util.invert",
        summary="invert intensities",
        masked=invert_masked,
        nodata_rule=_invert_nodata,
    )
)


def gray_bands(bands: int) -> int:
    """Band rule of ``grayscale``: 1, 3 (RGB) or 4 (RGBA) bands in, one out; else an error."""
    if bands not in _GRAY_INPUT_BANDS:
        raise OpError(
            f"grayscale needs a gray (1 band), RGB (3) or RGBA (4) image, got {bands} bands; "
            "pick the bands to combine first (e.g. with your own op), or leave out grayscale"
        )
    return 1


_GRAY_INPUT_BANDS = (1, 3, 4)

register(
    OpDefinition(
        name="grayscale",
        func=grayscale,
        dtypes=("uint8", "uint16", "float16", "float32", "float64"),
        in_bands=(1, 3, 4),
        bands=gray_bands,
        params=(),
        equals="cv2.cvtColor(COLOR_RGB2GRAY) (integers); BT.601 weights in float32 (floats)",
        summary="RGB(A) to one band (a one-band image stays as it is)",
        masked=grayscale_masked,
    )
)
