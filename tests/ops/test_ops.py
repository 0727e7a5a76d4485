"""Each built-in op equals, on the whole image, the library function it names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import filters as skfilters
from skimage import util as skutil

from tests.conftest import make_image
from tilewise.errors import OpError
from tilewise.ops import REGISTRY
from tilewise.pipeline import parse_op

SHAPE = (123, 97)


def run(spec, image):
    return parse_op(spec)(image)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_gaussian_integer_equals_cv2(dtype):
    image = make_image(SHAPE, dtype)
    expected = cv2.GaussianBlur(image, (33, 33), 4, sigmaY=4, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(run("gaussian:sigma=4", image), expected)


def test_gaussian_float_equals_scipy_and_agrees_with_cv2():
    image = make_image(SHAPE, "float32")
    expected = ndimage.gaussian_filter(image, 2.5, mode="mirror", truncate=4.0)
    got = run("gaussian:sigma=2.5", image)
    np.testing.assert_array_equal(got, expected)
    radius = int(4 * 2.5 + 0.5)
    cv = cv2.GaussianBlur(image, (2 * radius + 1,) * 2, 2.5, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(got, cv, atol=1e-5)


def test_median_equals_cv2_for_uint8_and_scipy_otherwise():
    image = make_image(SHAPE, "uint8")
    np.testing.assert_array_equal(run("median:size=9", image), cv2.medianBlur(image, 9))
    wide = make_image(SHAPE, "uint16")
    np.testing.assert_array_equal(
        run("median:size=7", wide), ndimage.median_filter(wide, size=7, mode="nearest")
    )
    # the two implementations share the border rule
    np.testing.assert_array_equal(
        cv2.medianBlur(image, 5), ndimage.median_filter(image, size=5, mode="nearest")
    )


def test_mean_equals_cv2_blur_for_integers_and_agrees_for_floats():
    image = make_image(SHAPE, "uint8")
    expected = cv2.blur(image, (5, 5), borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(run("mean:size=5", image), expected)
    floats = make_image(SHAPE, "float32")
    cv = cv2.blur(floats, (5, 5), borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(run("mean:size=5", floats), cv, atol=1e-6)


@pytest.mark.parametrize("name", ["erode", "dilate"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_erode_dilate_equal_cv2_and_scipy(name, dtype):
    image = make_image(SHAPE, dtype)
    kernel = np.ones((5, 5), np.uint8)
    cv_fn = cv2.erode if name == "erode" else cv2.dilate
    sp_fn = ndimage.grey_erosion if name == "erode" else ndimage.grey_dilation
    got = run(f"{name}:size=5", image)
    np.testing.assert_array_equal(got, cv_fn(image, kernel))
    np.testing.assert_array_equal(got, sp_fn(image, size=5, mode="nearest"))


@pytest.mark.parametrize(
    ("name", "code"), [("opening", cv2.MORPH_OPEN), ("closing", cv2.MORPH_CLOSE)]
)
def test_opening_closing_equal_cv2_morphology(name, code):
    image = make_image(SHAPE, "uint8")
    expected = cv2.morphologyEx(image, code, np.ones((7, 7), np.uint8))
    np.testing.assert_array_equal(run(f"{name}:size=7", image), expected)


def test_sobel_equals_skimage():
    image = make_image(SHAPE, "uint8")
    np.testing.assert_array_equal(run("sobel", image), skfilters.sobel(image).astype(np.float32))


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_threshold_equals_cv2_threshold(dtype):
    image = make_image(SHAPE, dtype)
    value = 127 if dtype == "uint8" else 0.5
    _, expected = cv2.threshold(image, value, 255, cv2.THRESH_BINARY)
    got = run(f"threshold:value={value}", image)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected.astype(np.uint8))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "uint32"])
@pytest.mark.parametrize("value", [-40000.5, -129, -1.5, 0, 0.5, 126.99, 127, 254.5, 255, 70000])
def test_threshold_of_integers_equals_the_float_comparison(dtype, value):
    info = np.iinfo(dtype)
    image = np.random.default_rng(5).integers(info.min, info.max, (23, 17, 3), dtype=dtype)
    image[0, 0] = [info.min, info.max, 0]
    near = [np.floor(value), np.ceil(value), np.floor(value) + 1]  # the pixels at the cut
    image[1, 0] = np.clip(near, info.min, info.max)
    for view in (image, image[..., 1], image[:, ::2]):
        got = run(f"threshold:value={value}", view)
        assert got.dtype == np.uint8 and got.shape == view.shape
        np.testing.assert_array_equal(got, np.where(view.astype(np.float64) > value, 255, 0))


def test_threshold_of_nan_and_strided_bands_is_zero_or_255():
    image = np.random.default_rng(3).random((31, 40, 3), dtype=np.float32)[:, ::2]
    image[0, 0, 0] = np.nan
    got = run("threshold:value=0.5", image)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.where(image > 0.5, 255, 0))
    assert got[0, 0, 0] == 0


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_invert_equals_skimage(dtype):
    image = make_image(SHAPE, dtype)
    np.testing.assert_array_equal(run("invert", image), skutil.invert(image))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_grayscale_equals_cv2_cvtcolor(dtype):
    image = make_image(SHAPE, dtype, bands=3)
    expected = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(run("grayscale", image), expected)


def test_grayscale_float_matches_cv2_closely():
    image = make_image(SHAPE, "float32", bands=3)
    np.testing.assert_allclose(
        run("grayscale", image), cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), atol=1e-5
    )


def test_stamp_draws_the_worker_name():
    image = np.zeros((200, 400), np.uint8)
    out = run("stamp", image)
    assert out.max() == 255
    assert image.max() == 0


def test_ops_do_not_modify_their_input():
    image = make_image(SHAPE, "uint8", bands=3)
    before = image.copy()
    for name in REGISTRY:
        spec = {
            "gaussian": "gaussian:sigma=1",
            "threshold": "threshold:value=9",
            "bands": "bands:3,1",
            "expr": "expr:b1/b2",
        }.get(name, name)
        if any(p.name == "size" for p in REGISTRY[name].params or ()):
            spec = f"{name}:size=3"
        run(spec, image)
        np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("median:size=4", "odd"),
        ("median", "missing parameter size"),
        ("gaussian:sigma=-1", "positive"),
        ("gaussian:sigma=1,radius=3", "unknown parameter radius"),
        ("blurr:size=3", "unknown op 'blurr'"),
        ("threshold:value=abc", "must be float"),
        ("no.such.module.func", "cannot import op"),
        ("invert:3", "a value without a name"),
        ("gaussian:2,sigma=3", "a value without a name"),
    ],
)
def test_bad_ops_say_what_is_wrong(spec, message):
    with pytest.raises(OpError, match=message):
        run(spec, make_image((20, 20)))


@pytest.mark.parametrize(
    ("spec", "params"),
    [
        ("gaussian:2", {"sigma": 2.0, "truncate": 4.0}),
        ("gaussian:2,truncate=3", {"sigma": 2.0, "truncate": 3.0}),
        ("bands:1,3,4", {"bands": "1,3,4"}),
        ("bands:bands=4,1", {"bands": "4,1"}),
        ("expr:where(b1>=2, b1, 0),dtype=uint8,nodata=0", None),
        ("expr:'b1,b2',nodata=1", None),
        ("expr:b1==b2", None),
    ],
)
def test_op_strings_take_a_first_value_lists_and_quotes(spec, params):
    op = parse_op(spec)
    if params is not None:
        assert dict(op.params) == params
    elif spec.startswith("expr:where"):
        assert op.params["expr"] == "where(b1>=2, b1, 0)"
        assert (op.params["dtype"], op.params["nodata"]) == ("uint8", 0.0)
    elif "nodata=1" in spec:
        assert (op.params["expr"], op.params["nodata"]) == ("b1,b2", 1.0)
    else:
        assert op.params["expr"] == "b1==b2"
    assert parse_op(op.spec()).spec() == op.spec()  # the spec string reads back


def test_grayscale_of_a_gray_image_is_that_image():
    for image in (make_image((20, 20)), make_image((20, 20))[..., None]):
        np.testing.assert_array_equal(run("grayscale", image), image)
    assert parse_op("grayscale").out_bands(1) == 1


def test_grayscale_refuses_other_band_counts_from_the_header():
    with pytest.raises(OpError, match="got 7 bands"):
        parse_op("grayscale").out_bands(7)
    with pytest.raises(OpError, match="got 2 bands"):
        run("grayscale", make_image((20, 20), bands=2))
