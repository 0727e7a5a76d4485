"""Ops that change the scale by an integer factor tile exactly too: output tiles map back
through every stage to aligned input windows (tilewise.geometry.stages)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tilewise
from tests.conftest import make_image, read_image, write_image
from tilewise.errors import GeometryError, PipelineError
from tilewise.geometry import Grid, Stage, StageMap
from tilewise.pipeline import Pipeline

CHAINS = [
    ["tests.scaleops.halve"],
    ["tests.scaleops.quarter"],
    ["tests.scaleops.double_nearest"],
    ["tests.scaleops.double_linear"],
    ["tests.scaleops.triple_linear"],
    ["gaussian:sigma=2", "tests.scaleops.halve", "median:size=5", "tests.scaleops.halve"],
    ["tests.scaleops.halve", "gaussian:sigma=1.5", "tests.scaleops.double_linear", "sobel"],
    [
        "mean:size=3",
        "tests.scaleops.double_linear",
        "erode:size=3",
        "tests.scaleops.quarter",
        "threshold:value=100",
    ],
]


@pytest.mark.parametrize("ops", CHAINS, ids=lambda ops: "+".join(o.split(".")[-1] for o in ops))
@pytest.mark.parametrize(
    ("tile", "layout"), [("48", "grid"), ("100x36", "grid"), ("52", "rows"), ("40", "columns")]
)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_scaled_pipelines_tile_exactly_in_memory(ops, tile, layout, dtype):
    image = make_image((304, 256), dtype)
    whole = Pipeline.from_specs(ops)(image)
    tiled = tilewise.process(image, ops, tile=tile, layout=layout)
    assert tiled.shape == whole.shape
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("out", ["o.tif", "o.zarr", "o.npy"])
def test_scaled_pipeline_file_run_local_executor(tmp_path, out):
    image = make_image((608, 512), "uint8", bands=3)
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    ops = ["gaussian:sigma=2", "tests.scaleops.halve", "tests.scaleops.double_linear"]
    whole = Pipeline.from_specs(ops)(image)
    report = tilewise.run(src, tmp_path / out, ops, tile=128, workers=2)
    assert report.ok
    assert report.grid["image_shape"] == [608, 512]
    np.testing.assert_array_equal(read_image(tmp_path / out), whole)


def test_pyramid_level_via_the_cli_shape(tmp_path):
    image = make_image((512, 384), "uint8")
    src = write_image(tmp_path / "in.tif", image)
    report = tilewise.run(
        src, tmp_path / "half.zarr", ["tests.scaleops.halve"], tile=64, executor="serial"
    )
    assert report.grid["image_shape"] == [256, 192]
    assert read_image(tmp_path / "half.zarr").shape == (256, 192)


def test_a_size_not_divisible_by_the_factor_is_refused_with_the_reason():
    with pytest.raises(GeometryError, match="not divisible by 2; crop or pad it first"):
        tilewise.process(make_image((301, 256)), ["tests.scaleops.halve"], tile=64)


def test_ops_that_resize_to_arbitrary_shapes_are_refused_in_tiled_runs():
    from tilewise.ops.base import OpDefinition

    definition = OpDefinition("squash", lambda image: image[::3], changes_shape=True)
    pipeline = Pipeline((definition.bind(),))
    with pytest.raises(PipelineError, match="integer scale factors"):
        pipeline.stage_map((30, 30))


stage_lists = st.lists(
    st.one_of(
        st.builds(Stage, halo=st.integers(0, 4)),
        st.builds(Stage, halo=st.integers(0, 2), down=st.sampled_from([2, 4])),
        st.builds(Stage, halo=st.integers(0, 2), up=st.sampled_from([2, 3])),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(stage_lists, st.integers(1, 12), st.integers(1, 12), st.integers(5, 60))
def test_stage_windows_cover_their_core_and_stay_in_bounds(stages, rows, cols, tile):
    factor = 1
    for s in stages:
        factor *= s.down
    try:
        m = StageMap((rows * factor * 4, cols * factor * 4), tuple(stages))
    except GeometryError:
        return
    grid = Grid(m.output_shape, (tile, tile), stages=m)
    covered = np.zeros(m.output_shape, dtype=np.int32)
    for t in grid:
        covered[t.core.slices] += 1
        windows = m.windows(t.core)
        for index, window in enumerate(windows[:-1]):
            shape = m.shapes[index]
            assert window.stop_row <= shape[0] and window.stop_col <= shape[1]
            forward = m.forward(index, window)
            assert forward.contains(windows[index + 1])
            if stages[index].down > 1:
                assert window.row % stages[index].down == 0
                assert window.height % stages[index].down == 0
    assert (covered == 1).all()


BUILTIN_CHAINS = [
    ["resize:scale=0.5"],
    ["gaussian:sigma=2", "resize:scale=0.25", "median:size=3"],
    ["resize:scale=2"],
    ["resize:scale=3,interpolation=nearest", "mean:size=3"],
    ["resize:scale=0.5", "resize:scale=2", "threshold:value=0.5"],
]


@pytest.mark.parametrize("ops", BUILTIN_CHAINS, ids="|".join)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_builtin_resize_by_integer_factors_tiles_exactly(ops, dtype):
    image = make_image((304, 256), dtype)
    if dtype != "float32":
        ops = [o.replace("value=0.5", "value=100") for o in ops]
    whole = Pipeline.from_specs(ops)(image)
    tiled = tilewise.process(image, ops, tile="72x40", layout="grid")
    np.testing.assert_array_equal(tiled, whole)


def test_float_block_means_agree_with_opencv_area():
    import cv2

    image = make_image((128, 96), "float32", bands=3)
    ours = Pipeline.from_specs(["resize:scale=0.25"])(image)
    theirs = cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize(
    "spec",
    [
        "resize:scale=0.3",
        "resize:shape=100x100",
        "resize:scale=2,interpolation=cubic",
        "crop:shape=10x10",
        "pad:width=3",
    ],
)
def test_resizes_tiles_cannot_follow_are_refused_with_advice(spec):
    with pytest.raises(PipelineError, match="tilewise batch"):
        tilewise.process(make_image((64, 64)), [spec], tile=32)
