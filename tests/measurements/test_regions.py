"""Regions merged across tiles equal ``skimage.measure.label`` + ``regionprops_table`` whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.measure import label, regionprops_table

from tilewise.errors import UsageError
from tilewise.geometry import Grid, Layout
from tilewise.measurements import Regions, relabel, tiled

PROPS = ("label", "area", "centroid", "bbox", "intensity_mean", "intensity_min", "intensity_max")
NAMES = {
    "label": "label",
    "area": "area",
    "centroid_row": "centroid-0",
    "centroid_col": "centroid-1",
    "bbox_min_row": "bbox-0",
    "bbox_min_col": "bbox-1",
    "bbox_max_row": "bbox-2",
    "bbox_max_col": "bbox-3",
    "intensity_mean": "intensity_mean",
    "intensity_min": "intensity_min",
    "intensity_max": "intensity_max",
}


def assert_same_table(got, image, threshold, connectivity, intensity=None):
    labels = label(image > threshold, connectivity=connectivity)
    ref = regionprops_table(labels, image if intensity is None else intensity, properties=PROPS)
    values = image if intensity is None else intensity
    for ours, theirs in NAMES.items():
        if ours == "intensity_mean" and values.dtype.kind == "f":
            # skimage averages float32 in float32; tilewise sums in float64
            np.testing.assert_allclose(got[ours], ref[theirs], rtol=1e-6)
        else:
            np.testing.assert_array_equal(got[ours], ref[theirs], err_msg=ours)


@settings(max_examples=50)
@given(
    shape=st.tuples(st.integers(2, 30), st.integers(2, 30)),
    tile=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    layout=st.sampled_from(["grid", "rows", "columns"]),
    connectivity=st.sampled_from([1, 2]),
    dtype=st.sampled_from(["uint16", "float32"]),
    seed=st.integers(0, 2**16),
)
def test_random_blobs_equal_whole(shape, tile, layout, connectivity, dtype, seed):
    image = np.random.default_rng(seed).integers(0, 10, shape).astype(dtype)
    got = tiled(image, detect=Regions(4, connectivity), tile=tile, layout=layout)
    assert_same_table(got, image, 4, connectivity)


@pytest.mark.parametrize("layout", ["grid", "rows", "columns"])
def test_objects_across_edges_and_corners(layout):
    image = np.zeros((23, 23), np.uint8)
    image[6:9, 2:20] = 50  # a bar across three vertical tile edges
    image[2:21, 14] = 60  # a column across every horizontal edge, joining the bar
    image[6, 6] = image[7, 7] = 90  # touching only diagonally, across the corner at (7, 7)
    image[13, 6] = image[14, 7] = 80
    image[20:23, 0:3] = 70  # in the last, smaller tiles
    for connectivity in (1, 2):
        got = tiled(image, detect=Regions(10, connectivity), tile=7, layout=layout)
        assert_same_table(got, image, 10, connectivity)
    assert len(tiled(image, detect=Regions(10, 1), tile=7)["label"]) == 4
    assert len(tiled(image, detect=Regions(10, 2), tile=7)["label"]) == 3


def test_separate_intensity_image():
    rng = np.random.default_rng(5)
    mask = rng.integers(0, 3, (19, 17)).astype(np.uint8)
    intensity = rng.integers(0, 4000, (19, 17)).astype(np.uint16)
    grid = Grid(mask.shape, (4, 6), Layout.GRID)
    detector = Regions(1)
    merger = detector.merger(grid)
    for t in grid:
        part = detector.detect(
            mask[t.read.slices], t, mask.shape, intensity=intensity[t.read.slices]
        )
        merger.add(part)
    assert_same_table(merger.finish(), mask, 1, 1, intensity)
    by_driver = tiled(mask, detect=Regions(1), tile=(4, 6), intensity=intensity)
    assert_same_table(by_driver, mask, 1, 1, intensity)
    with pytest.raises(UsageError, match="intensity image is"):
        tiled(mask, detect=Regions(1), tile=4, intensity=intensity[:5])


@pytest.mark.parametrize("connectivity", [1, 2])
def test_min_area_and_label_image_tile_by_tile_in_any_order(connectivity):
    image = np.random.default_rng(6).integers(0, 10, (37, 29)).astype(np.uint8)
    detector = Regions(5, connectivity, min_area=3)
    grid = Grid(image.shape, (6, 7), Layout.GRID)
    parts = [detector.detect(image[t.read.slices], t, image.shape) for t in grid]
    merger = detector.merger(grid)
    for part in [*parts[::-1], parts[3]]:  # any order; a tile done twice counts once
        merger.add(part)
    table = merger.finish()
    out = np.zeros(image.shape, merger.label_dtype)
    for t in grid:
        local = detector.label_tile(image[t.read.slices], t, image.shape)
        out[t.core.slices] = relabel(local, merger.lookup(t.index))
    # the reference: skimage's labels without the small regions, renumbered by first pixel
    ref = label(image > 5, connectivity=connectivity)
    small = np.bincount(ref.ravel()) < 3
    small[0] = False
    ref[small[ref]] = 0
    ref = label(ref > 0, connectivity=connectivity)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(table["area"], np.bincount(ref.ravel())[1:])
    assert table["label"].tolist() == list(range(1, ref.max() + 1))


def test_no_foreground_gives_an_empty_table():
    got = tiled(np.zeros((9, 9), np.float32), detect=Regions(0), tile=4)
    assert all(col.size == 0 for col in got.values())


def test_parameters_and_missing_tiles_are_checked():
    with pytest.raises(UsageError, match="connectivity"):
        Regions(0, connectivity=3)
    with pytest.raises(UsageError, match="min_area"):
        Regions(0, min_area=-1)
    grid = Grid((8, 8), (4, 4), Layout.GRID)
    merger = Regions(0).merger(grid)
    merger.add(Regions(0).detect(np.ones((4, 4)), grid.tile(0), (8, 8)))
    with pytest.raises(UsageError, match="3 of 4 tiles were never merged"):
        merger.finish()
    with pytest.raises(UsageError, match="one band"):
        Regions(0).detect(np.ones((4, 4, 2)), grid.tile(0), (8, 8))
