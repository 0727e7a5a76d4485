"""Smoothing and edge filters: gaussian, median, mean, sobel.

Libraries are imported when an op first runs, in the worker: the main process
only reads the ops' metadata and never pays for importing OpenCV or SciPy.

With nodata, each filter leaves the nodata pixels out of its windows
(:mod:`tilewise.ops.nodata`): ``gaussian`` and ``mean`` are normalized
convolutions in float64, ``median`` takes the median of the valid pixels, and
``sobel`` gives nodata wherever its 3 x 3 window holds a nodata pixel.

Every filter is exact under tiling: each output pixel is computed by the same
arithmetic in the same order wherever the tile starts. Where an OpenCV kernel
is not translation-invariant for a dtype (SIMD tail handling on floats, running
sums), another implementation is used for that dtype and the docstring says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops._bands import (
    OPENCV_MAX_BANDS,
    check_dtype,
    is_float,
    odd_size,
    per_band,
    to_float32,
)
from tilewise.ops.base import OpDefinition, Param, register
from tilewise.ops.nodata import nan_rule, normalized, per_band_masked

Array = npt.NDArray[Any]
_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel radius for ``sigma`` and ``truncate``, as scipy.ndimage computes it.

    >>> gaussian_radius(4.0)
    16
    """
    return int(truncate * float(sigma) + 0.5)


def gaussian(image: Array, sigma: float, truncate: float = 4.0) -> Array:
    """Gaussian blur with a kernel of radius ``int(truncate * sigma + 0.5)``, mirrored border.

    Integer images: ``cv2.GaussianBlur(image, (2r+1, 2r+1), sigma, sigma,
    borderType=cv2.BORDER_REFLECT_101)`` (OpenCV's bit-exact fixed-point path).
    Float images: ``scipy.ndimage.gaussian_filter(image, sigma, mode="mirror",
    truncate=truncate)`` per band, because OpenCV's float kernels round
    differently at the SIMD tail of each row.
    """
    check_dtype("gaussian", image, _DTYPES)
    if sigma <= 0:
        raise OpError(f"gaussian: sigma must be positive, got {sigma}")
    radius = gaussian_radius(sigma, truncate)
    if is_float(image):
        from scipy import ndimage

        return per_band(
            lambda band: ndimage.gaussian_filter(band, sigma, mode="mirror", truncate=truncate),
            image,
        )
    import cv2

    ksize = (2 * radius + 1, 2 * radius + 1)
    return per_band(
        lambda band: cv2.GaussianBlur(
            band, ksize, sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101
        ),
        image,
        max_bands=OPENCV_MAX_BANDS,
    )


def median(image: Array, size: int) -> Array:
    """Median over a ``size`` x ``size`` window, border replicated.

    uint8: ``cv2.medianBlur(image, size)``. Other dtypes:
    ``scipy.ndimage.median_filter(image, size, mode="nearest")`` per band
    (OpenCV takes other dtypes only up to size 5).
    """
    check_dtype("median", image, _DTYPES)
    odd_size("median", size)
    if image.dtype == np.uint8:
        import cv2

        return per_band(lambda band: cv2.medianBlur(band, size), image, max_bands=OPENCV_MAX_BANDS)
    from scipy import ndimage

    return per_band(lambda band: ndimage.median_filter(band, size=size, mode="nearest"), image)


def _mean_float(band: Array, size: int) -> Array:
    from scipy import ndimage

    weights = np.full(size, 1.0 / size)
    rows = ndimage.correlate1d(band, weights, axis=0, mode="mirror")
    return ndimage.correlate1d(rows, weights, axis=1, mode="mirror")


def mean(image: Array, size: int) -> Array:
    """Mean over a ``size`` x ``size`` window, mirrored border.

    Integer images: ``cv2.blur(image, (size, size), borderType=cv2.BORDER_REFLECT_101)``
    (exact integer sums). Float images: ``scipy.ndimage.correlate1d`` with a
    ``1/size`` kernel along rows then columns (``mode="mirror"``): running-sum
    box filters on floats depend on where the window starts.
    """
    import cv2

    check_dtype("mean", image, _DTYPES)
    odd_size("mean", size)
    if is_float(image):
        return per_band(lambda band: _mean_float(band, size), image)
    return per_band(
        lambda band: cv2.blur(band, (size, size), borderType=cv2.BORDER_REFLECT_101),
        image,
        max_bands=OPENCV_MAX_BANDS,
    )


def sobel(image: Array) -> Array:
    """Sobel gradient magnitude per band, as float32.

    Equals ``skimage.filters.sobel(band).astype(numpy.float32)`` for each band
    (integer images are scaled to [0, 1] first, border reflected).
    """
    from skimage import filters as skfilters

    check_dtype("sobel", image, _DTYPES)
    return per_band(lambda band: skfilters.sobel(band).astype(np.float32), image)


def gaussian_masked(
    image: Array, valid: Array, sigma: float, truncate: float = 4.0
) -> tuple[Array, Array]:
    """``gaussian`` over valid pixels: ``G(x * valid) / G(valid)``, G the float64
    ``scipy.ndimage.gaussian_filter(mode="mirror", truncate=truncate)``; integer
    results rounded half to even."""
    from scipy import ndimage

    check_dtype("gaussian", image, _DTYPES)

    def smooth(x: Array) -> Array:
        return np.asarray(ndimage.gaussian_filter(x, sigma, mode="mirror", truncate=truncate))

    return per_band_masked(lambda band, ok: normalized(smooth, band, ok), image, valid)


def mean_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``mean`` over valid pixels: the float64 box sums of ``x * valid`` over those of ``valid``."""
    check_dtype("mean", image, _DTYPES)
    odd_size("mean", size)
    return per_band_masked(
        lambda band, ok: normalized(lambda x: _mean_float(x, size), band, ok), image, valid
    )


def _median_band(band: Array, valid: Array, size: int) -> tuple[Array, Array]:
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy import ndimage

    # windows without nodata: the ordinary median (an odd count: its middle value)
    out = median(np.where(valid, band, 0).astype(band.dtype), size)
    partial = ndimage.maximum_filter(~valid, size=size, mode="nearest") & valid
    if not partial.any():
        return out, valid
    radius = size // 2
    values = np.pad(np.where(valid, band, np.inf).astype(np.float64), radius, mode="edge")
    rows, cols = np.nonzero(partial)
    windows = sliding_window_view(values, (size, size))[rows, cols].reshape(len(rows), -1)
    windows.sort(axis=-1)  # the valid values first: nodata is given +inf
    flags = sliding_window_view(np.pad(valid, radius, mode="edge"), (size, size))[rows, cols]
    middle = (flags.sum(axis=(1, 2)) - 1) // 2
    out[rows, cols] = np.take_along_axis(windows, middle[:, np.newaxis], axis=-1)[:, 0]
    return out, valid


def median_masked(image: Array, valid: Array, size: int) -> tuple[Array, Array]:
    """``median`` over valid pixels: the median of a window's valid values, border replicated.

    With an even count of valid values, the lower of the two middle ones, so the
    result is always one of the input's values. Without nodata in a window it
    equals ``median``.
    """
    check_dtype("median", image, _DTYPES)
    odd_size("median", size)
    return per_band_masked(lambda band, ok: _median_band(band, ok, size), image, valid)


def sobel_masked(image: Array, valid: Array) -> tuple[Array, Array]:
    """``sobel`` where the 3 x 3 window holds no nodata pixel; nodata elsewhere."""
    from scipy import ndimage

    check_dtype("sobel", image, _DTYPES)
    filled = np.where(valid, image, 0).astype(image.dtype)
    window = np.ones((3, 3) if valid.ndim == 2 else (3, 3, 1), dtype=bool)
    # mode="reflect", as skimage's sobel: at the border the window holds image pixels only
    complete = ~ndimage.maximum_filter(~valid, footprint=window, mode="reflect")
    return sobel(filled), complete


register(
    OpDefinition(
        name="gaussian",
        func=gaussian,
        dtypes=_DTYPES,
        halo=gaussian_radius,
        halo_rule="int(truncate * sigma + 0.5)",
        params=(
            Param("sigma", float, help="standard deviation in pixels", rule="positive"),
            Param("truncate", float, 4.0, help="kernel radius in sigmas", rule="positive"),
        ),
        equals="cv2.GaussianBlur (integer dtypes), scipy.ndimage.gaussian_filter (floats)",
        summary="Gaussian blur, mirrored border",
        masked=gaussian_masked,
    )
)
register(
    OpDefinition(
        name="median",
        func=median,
        dtypes=_DTYPES,
        halo=lambda size: size // 2,
        halo_rule="size // 2",
        params=(Param("size", int, help="odd window size", rule="odd"),),
        equals="cv2.medianBlur (uint8), scipy.ndimage.median_filter(mode='nearest') (others)",
        summary="median filter, replicated border",
        masked=median_masked,
    )
)
register(
    OpDefinition(
        name="mean",
        func=mean,
        dtypes=_DTYPES,
        halo=lambda size: size // 2,
        halo_rule="size // 2",
        params=(Param("size", int, help="odd window size", rule="odd"),),
        equals="cv2.blur (integer dtypes), scipy.ndimage.correlate1d box kernel (floats)",
        summary="box mean filter, mirrored border",
        masked=mean_masked,
    )
)
register(
    OpDefinition(
        name="sobel",
        func=sobel,
        dtypes=_DTYPES,
        halo=1,
        dtype=to_float32,
        params=(),
        equals="skimage.filters.sobel per band, as float32",
        summary="Sobel gradient magnitude (float32)",
        masked=sobel_masked,
        nodata_rule=nan_rule,
    )
)
