"""resize, crop, pad, normalize, to_dtype: each equals the library function it names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import exposure
from skimage import util as skutil

from tests.conftest import make_image
from tilewise.errors import OpError, PipelineError
from tilewise.ops import REGISTRY
from tilewise.pipeline import Pipeline, parse_op

SHAPE = (123, 97)


def run(spec, image):
    return parse_op(spec)(image)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("bands", [1, 3, 5])
def test_resize_shape_equals_cv2_inter_area(dtype, bands):
    image = make_image(SHAPE, dtype, bands=bands)
    got = run("resize:shape=50x40", image)
    if bands <= 4:
        expected = cv2.resize(image, (40, 50), interpolation=cv2.INTER_AREA)
    else:
        planes = [
            cv2.resize(image[..., b], (40, 50), interpolation=cv2.INTER_AREA) for b in range(5)
        ]
        expected = np.stack(planes, axis=-1)
    assert got.dtype == image.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("interpolation", "flag"),
    [
        ("area", cv2.INTER_AREA),
        ("linear", cv2.INTER_LINEAR),
        ("cubic", cv2.INTER_CUBIC),
        ("nearest", cv2.INTER_NEAREST),
    ],
)
@pytest.mark.parametrize("scale", [0.37, 0.5, 2.5])
def test_resize_scale_equals_cv2_fx_fy(interpolation, flag, scale):
    image = make_image(SHAPE, "uint8", bands=3)
    got = run(f"resize:scale={scale},interpolation={interpolation}", image)
    expected = cv2.resize(image, None, fx=scale, fy=scale, interpolation=flag)
    np.testing.assert_array_equal(got, expected)


def test_resize_auto_is_area_down_and_linear_up():
    image = make_image(SHAPE, "uint8")
    down = run("resize:shape=40x30", image)
    np.testing.assert_array_equal(down, cv2.resize(image, (30, 40), interpolation=cv2.INTER_AREA))
    up = run("resize:shape=200x150", image)
    np.testing.assert_array_equal(up, cv2.resize(image, (150, 200), interpolation=cv2.INTER_LINEAR))


def test_resize_keeps_a_single_band_axis():
    image = make_image(SHAPE, "uint8")[..., np.newaxis]
    assert run("resize:shape=20x10", image).shape == (20, 10, 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resize:shape=10x10,scale=0.5", "not both"),
        ("resize:shape=ten", "HxW"),
        ("resize:scale=0.001", "smaller than one pixel"),
        ("resize:scale=-1", "positive"),
        ("resize:shape=9x9,interpolation=lanczos", "interpolation"),
        ("crop:shape=500x5", "larger than"),
        ("crop:rows=50:10", "selects nothing"),
        ("crop:cols=0:1000", "reaches past"),
        ("crop:rows=1-2", "START:STOP"),
        ("crop:shape=5x5,rows=0:3", "not both"),
        ("pad:shape=5x5", "smaller than"),
        ("pad:width=-1", "negative"),
        ("pad:width=2,value=300", "does not fit"),
        ("pad:width=2,mode=mirror", "mode"),
        ("to_dtype:dtype=int8", "dtype must be"),
        ("to_dtype:dtype=uint8,scale=lots", "scale must be"),
        ("normalize:percentiles=99:1", "LOW < HIGH"),
        ("normalize:percentiles=1-99", "LOW:HIGH"),
    ],
)
def test_bad_parameters_say_what_is_wrong(spec, message):
    with pytest.raises(OpError, match=message):
        run(spec, make_image((20, 20)))


@pytest.mark.parametrize("bands", [1, 3])
def test_crop_ranges_equal_skimage_crop(bands):
    image = make_image(SHAPE, "uint16", bands=bands)
    got = run("crop:rows=10:-13,cols=5:", image)
    widths = [(10, 13), (5, 0)] + [(0, 0)] * (image.ndim - 2)
    np.testing.assert_array_equal(got, skutil.crop(image, widths, copy=True))
    assert got.base is None or got.base is not image


def test_crop_shape_is_centred():
    image = make_image(SHAPE, "uint8")
    got = run("crop:shape=64x32", image)
    top, left = (SHAPE[0] - 64) // 2, (SHAPE[1] - 32) // 2
    widths = ((top, SHAPE[0] - 64 - top), (left, SHAPE[1] - 32 - left))
    np.testing.assert_array_equal(got, skutil.crop(image, widths, copy=True))
    np.testing.assert_array_equal(run("crop", image), image)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_pad_equals_numpy_pad(mode):
    image = make_image(SHAPE, "uint8", bands=3)
    got = run(f"pad:width=4,top=1,right=0,mode={mode}", image)
    widths = ((1, 4), (4, 0), (0, 0))
    np.testing.assert_array_equal(got, np.pad(image, widths, mode=mode))


def test_pad_reflect_is_opencv_reflect_101_and_shape_centres():
    image = make_image(SHAPE, "float32")
    got = run("pad:width=3,mode=reflect", image)
    expected = cv2.copyMakeBorder(image, 3, 3, 3, 3, cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(got, expected)
    filled = run("pad:shape=130x100,value=9", make_image(SHAPE, "uint8"))
    assert filled.shape == (130, 100)
    np.testing.assert_array_equal(
        filled, np.pad(make_image(SHAPE, "uint8"), ((3, 4), (1, 2)), constant_values=9)
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_normalize_equals_rescale_intensity_of_percentiles(dtype):
    image = make_image(SHAPE, dtype, bands=3)
    got = run("normalize:percentiles=2:98,out_range=0:255", image)
    floats = image.astype(np.float32)
    in_range = tuple(float(v) for v in np.percentile(floats, (2, 98)))
    expected = exposure.rescale_intensity(floats, in_range=in_range, out_range=(0.0, 255.0))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert got.min() == 0 and got.max() == 255


def test_normalize_is_refused_in_tiled_runs():
    with pytest.raises(PipelineError, match=r"normalize.* needs the whole image at once"):
        Pipeline.from_specs(["normalize"]).check_tileable()


@pytest.mark.parametrize("target", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("source", ["uint8", "uint16", "float32"])
def test_to_dtype_auto_equals_skimage_img_as(source, target):
    image = make_image(SHAPE, source)
    fn = {"uint8": skutil.img_as_ubyte, "uint16": skutil.img_as_uint}.get(
        target, skutil.img_as_float32
    )
    got = run(f"to_dtype:dtype={target},scale=auto", image)
    assert got.dtype == np.dtype(target)
    np.testing.assert_array_equal(got, fn(image))


def test_to_dtype_none_clips_and_rounds():
    floats = np.array([[-3.0, 0.4, 0.6, 254.5, 300.0, np.nan]], np.float32)
    got = run("to_dtype:dtype=uint8", floats)
    expected = np.clip(np.rint(np.nan_to_num(floats)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, [[0, 0, 1, 254, 255, 0]])
    wide = np.array([[0, 200, 70000]], np.uint32)
    np.testing.assert_array_equal(run("to_dtype:dtype=uint16", wide), [[0, 200, 65535]])


def test_to_dtype_auto_explains_floats_out_of_range():
    with pytest.raises(OpError, match=r"values in \[0, 300\].*normalize"):
        run("to_dtype:dtype=uint8,scale=auto", np.array([[0.0, 300.0]], np.float32))


def test_to_dtype_declares_its_output_dtype_and_tiles():
    pipeline = Pipeline.from_specs(["to_dtype:dtype=uint16"])
    assert pipeline.out_dtype(np.dtype("float32")) == np.uint16
    pipeline.check_tileable()  # pointwise: allowed in tiled runs
    pipeline.check_portable()


@pytest.mark.parametrize("name", ["resize", "crop", "pad"])
def test_size_changing_ops_are_marked_and_refused_when_tiling(name):
    assert REGISTRY[name].changes_shape
    with pytest.raises(PipelineError, match=name):
        Pipeline.from_specs([name]).check_tileable()


def test_new_ops_do_not_modify_their_input():
    image = make_image(SHAPE, "uint8", bands=3)
    before = image.copy()
    for spec in (
        "resize:scale=0.5",
        "crop:shape=9x9",
        "pad:width=2,mode=edge",
        "normalize",
        "to_dtype:dtype=float32",
        "to_dtype:dtype=uint16,scale=auto",
    ):
        run(spec, image)
        np.testing.assert_array_equal(image, before)
