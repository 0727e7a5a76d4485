"""Nodata left out by the ops: each equals a straightforward whole-image NumPy/SciPy reference.

The references compute every window by brute force (``sliding_window_view`` and
NumPy's NaN-ignoring reductions), not by the separable filters the ops use.
Float tolerances: float64 sums taken in another order differ by a few units in
the last place (about 1e-15 relative); once rounded to float32 the results agree
to 1 float32 ulp, so ``rtol=1e-6``. ``lee`` keeps the ``rtol=1e-5`` of its
docstring: its variance subtracts two close numbers where a window is nearly
flat. Integer outputs are compared within 1 (a float64 value a few ulps either
side of .5 rounds either way). Pointwise ops are compared exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import tilewise
from tests.conftest import make_image
from tilewise.errors import OpError, PipelineError, UsageError
from tilewise.pipeline import Pipeline

NODATA = 0


def _image(dtype: str = "uint16", bands: int = 1) -> np.ndarray:
    image = make_image((46, 53), dtype, bands, seed=3)
    image = image + (1 if dtype != "float32" else 0.01)  # no valid pixel holds 0
    image = image.astype(dtype)
    image[10:20, 5:30] = NODATA
    image[0:3, 40:] = NODATA
    image[30, :] = NODATA
    image[35:40, 45:50] = NODATA  # a block bigger than a 3 x 3 window: no valid neighbour
    return image


def _run(ops: list[str], image: np.ndarray, dst_nodata: float | None = None) -> np.ndarray:
    return Pipeline.from_specs(ops).with_nodata(NODATA, image.dtype, dst_nodata=dst_nodata)(image)


def _windows(image: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, size*size) windows of the pixels as float64 with NaN for nodata; and the flags."""
    r = size // 2
    values = np.where(image != NODATA, image.astype(np.float64), np.nan)
    if mode == "outside":  # no pixel outside the image
        padded = np.pad(values, r, constant_values=np.nan)
    else:
        padded = np.pad(values, r, mode=mode)  # type: ignore[call-overload]
    windows = sliding_window_view(padded, (size, size))
    return windows.reshape(*image.shape, -1), image != NODATA


def test_gaussian_is_a_normalized_convolution():
    image = _image("float32")
    sigma, radius = 1.5, 6
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = np.outer(kernel, kernel).ravel()
    windows, valid = _windows(image, 2 * radius + 1, "reflect")  # scipy's "mirror"
    present = ~np.isnan(windows)
    expected = (np.where(present, windows, 0) * weights).sum(-1) / (present * weights).sum(-1)
    got = _run(["gaussian:sigma=1.5"], image)
    np.testing.assert_allclose(got[valid], expected[valid], rtol=1e-6)
    assert (got[~valid] == NODATA).all()
    # uint16: the same, rounded half to even
    ints = _image("uint16")
    windows, valid = _windows(ints, 2 * radius + 1, "reflect")
    present = ~np.isnan(windows)
    expected = (np.where(present, windows, 0) * weights).sum(-1) / (present * weights).sum(-1)
    got = _run(["gaussian:sigma=1.5"], ints)
    np.testing.assert_allclose(got[valid], np.rint(expected[valid]), atol=1)


def test_mean_median_erode_dilate_take_the_valid_pixels_of_each_window():
    image = _image("uint16", 3)
    for b in range(3):
        band = np.ascontiguousarray(image[..., b])
        mirrored, valid = _windows(band, 5, "reflect")
        replicated, _ = _windows(band, 3, "edge")
        ignored, _ = _windows(band, 3, "outside")  # OpenCV morphology's border
        got_mean = _run(["mean:size=5"], image)[..., b]
        np.testing.assert_allclose(got_mean[valid], np.nanmean(mirrored[valid], -1), atol=1)
        got_median = _run(["median:size=3"], image)[..., b]
        lower = [
            np.sort(w[~np.isnan(w)])[(np.count_nonzero(~np.isnan(w)) - 1) // 2]
            for w in replicated[valid]
        ]
        np.testing.assert_array_equal(got_median[valid], lower)
        np.testing.assert_array_equal(
            _run(["erode:size=3"], image)[..., b][valid], np.nanmin(ignored[valid], -1)
        )
        np.testing.assert_array_equal(
            _run(["dilate:size=3"], image)[..., b][valid], np.nanmax(ignored[valid], -1)
        )
        for ops in (["mean:size=5"], ["median:size=3"], ["erode:size=3"]):
            assert (_run(ops, image)[..., b][~valid] == NODATA).all(), ops


def test_lee_statistics_are_over_the_valid_pixels():
    image = _image("float32")
    size, looks = 5, 4.0
    windows, valid = _windows(image, size, "reflect")
    m = np.nanmean(windows[valid], -1)  # a valid pixel is in its own window
    v = np.nanvar(windows[valid], -1)  # population variance: mean(x²) − m²
    cu2 = 1 / looks
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.maximum(0, (1 - cu2 / (v / m**2)) / (1 + cu2))
    expected = m + w * (image[valid] - m)
    got = _run([f"lee:size={size},looks={looks}"], image)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[valid], expected, rtol=1e-5)
    assert (got[~valid] == NODATA).all()  # float32 holds the input's nodata value


def test_ndvi_and_db_map_nodata_to_nodata():
    image = _image("uint16", 3)
    nir, red = image[..., 2].astype(np.float64), image[..., 0].astype(np.float64)
    with np.errstate(all="ignore"):
        ndvi = ((nir - red) / (nir + red)).astype(np.float32)
    ndvi[(image[..., 2] == NODATA) | (image[..., 0] == NODATA)] = np.nan
    np.testing.assert_array_equal(_run(["expr:(b3-b1)/(b3+b1)"], image), ndvi)
    band = image[..., 1]
    with np.errstate(all="ignore"):
        decibels = (10 * np.log10(band.astype(np.float64))).astype(np.float32)
    decibels[band == NODATA] = -9999
    np.testing.assert_array_equal(_run(["bands:2", "db"], image, dst_nodata=-9999), decibels)


def test_threshold_needs_a_nodata_value_for_its_0_255_output():
    image = _image("uint16")
    with pytest.raises(PipelineError, match="--dst-nodata"):
        _run(["threshold:value=20000"], image)
    got = _run(["threshold:value=20000"], image, dst_nodata=1)
    expected = np.where(image > 20000, 255, 0).astype(np.uint8)
    expected[image == NODATA] = 1
    np.testing.assert_array_equal(got, expected)


def test_resize_area_averages_the_valid_pixels_of_each_block():
    image = _image("float32")[:46, :52]
    blocks = np.where(image != NODATA, image.astype(np.float64), np.nan).reshape(23, 2, 26, 2)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty"):
        expected = np.nanmean(blocks, axis=(1, 3))
    got = _run(["resize:scale=0.5"], image)
    empty = np.isnan(expected)
    assert empty.any() and (got[empty] == NODATA).all()
    np.testing.assert_allclose(got[~empty], expected[~empty], rtol=1e-6)


def test_sobel_is_nodata_where_its_window_holds_nodata():
    image = _image("float32")
    windows, _ = _windows(image, 3, "symmetric")  # skimage's mode="reflect"
    complete = ~np.isnan(windows).any(-1)
    got = _run(["sobel"], image)
    nodata = Pipeline.from_specs(["sobel"]).with_nodata(0, image.dtype).nodata
    assert nodata is not None and math.isnan(nodata.out)
    np.testing.assert_array_equal(np.isnan(got), ~complete)
    plain = Pipeline.from_specs(["sobel"])(image)  # the same pixels read where no nodata is
    np.testing.assert_array_equal(got[complete], plain[complete])


def test_ops_that_cannot_leave_nodata_out_are_refused_unless_nodata_is_none():
    image = _image("uint8")
    for ops, words in [
        (["stamp"], "does not know how to leave nodata pixels out"),
        (["resize:scale=2"], "would blend nodata"),
        (["tests.userops.max9_halo2"], "does not know how"),
    ]:
        with pytest.raises(PipelineError, match=words) as err:
            tilewise.process(image, ops, nodata=NODATA)
        assert "--nodata none" in str(err.value)
    assert tilewise.process(image, ["resize:scale=2"]).shape == (92, 106)


def test_dst_nodata_must_fit_the_output_and_the_masked_ops_check_their_input():
    image = _image("uint8")
    with pytest.raises(UsageError, match="does not fit the output's uint8"):
        _run(["median:size=3"], image, dst_nodata=300)
    with pytest.raises(OpError, match="multiples of 2"):
        _run(["resize:scale=0.5"], image[:45])
