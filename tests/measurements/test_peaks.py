"""Peaks per tile equal ``skimage.feature.peak_local_max`` on the whole image, plateaus too."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.feature import peak_local_max

import tilewise
from tilewise.errors import GeometryError, UsageError
from tilewise.geometry import Grid, Layout
from tilewise.measurements import Peaks, skimage_order, tiled

LAYOUTS = ("grid", "rows", "columns")


def whole(image, d, t, border=True):
    return peak_local_max(image, min_distance=d, threshold_abs=t, exclude_border=border)


def tiled_coords(image, detector, tile, layout="grid"):
    table = skimage_order(tiled(image, detect=detector, tile=tile, layout=layout))
    return np.stack([table["row"], table["col"]], axis=1)


@settings(max_examples=60)
@given(
    shape=st.tuples(st.integers(3, 26), st.integers(3, 26)),
    tile=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    layout=st.sampled_from(LAYOUTS),
    d=st.integers(1, 4),
    border=st.sampled_from([True, False, 0, 2, (1, 3)]),
    dtype=st.sampled_from(["uint8", "float32"]),
    seed=st.integers(0, 2**16),
)
def test_plateau_images_equal_whole(shape, tile, layout, d, border, dtype, seed):
    # values 0..3 make plateaus and chains of equal maxima everywhere, across every tile edge
    image = np.random.default_rng(seed).integers(0, 4, shape).astype(dtype)
    got = tiled_coords(image, Peaks(0, d, border), tile, layout)
    np.testing.assert_array_equal(got, whole(image, d, 0, border))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_ridge_across_many_tiles_keeps_every_dth_pixel_from_its_start(layout):
    # one row of equal maxima crossing 15 tile edges: which pixels survive depends on where
    # the ridge starts, far outside most tiles — the merge's global pass decides
    image = np.zeros((21, 203), np.float32)
    image[10, 3:190] = 2.0
    image[4:17, 100] = 2.0  # a crossing ridge: a corner-shaped group
    expected = whole(image, 4, 0.5)
    np.testing.assert_array_equal(tiled_coords(image, Peaks(0.5, 4), (7, 13), layout), expected)
    assert len(expected) > 40


def test_a_plateau_crossing_a_tile_corner_is_contested_and_resolved_in_the_merge():
    image = np.zeros((20, 20), np.uint8)
    image[7:13, 7:13] = 9  # a 6x6 plateau on the corner of four 10x10 tiles
    image[3, 16] = 5
    detector = Peaks(1, 3)
    grid = Grid(image.shape, (10, 10), Layout.GRID, halo=detector.halo)
    parts = [detector.detect(image[t.read.slices], t, image.shape) for t in grid]
    assert all(p.contested_rows.size for p in parts)
    merger = detector.merger(grid)
    streamed = [merger.add(p) for p in parts]
    assert sum(len(s["row"]) for s in streamed) == 1  # the lone peak at (3, 16), at once
    assert len(merger.finish()["row"]) == len(whole(image, 3, 1)) - 1


def test_plateau_inside_one_core_is_decided_in_its_tile():
    image = np.zeros((30, 30), np.uint8)
    image[12:18, 12:18] = 7
    detector = Peaks(1, 2)
    grid = Grid(image.shape, (10, 10), Layout.GRID, halo=detector.halo)
    center = grid.tile(4)
    part = detector.detect(image[center.read.slices], center, image.shape)
    assert part.contested_rows.size == 0
    assert sorted(zip(part.rows.tolist(), part.cols.tolist(), strict=True)) == sorted(
        map(tuple, whole(image, 2, 1).tolist())
    )


@pytest.mark.parametrize("fill", [5, 0])
def test_constant_image_has_no_peaks_but_a_constant_tile_has(fill):
    image = np.full((24, 24), 5, np.uint8)
    for d, tile in ((2, 5), (1, 5), (2, 30)):  # a whole plateau in one core; no groups at d=1
        assert len(tiled(image, detect=Peaks(1, d, False), tile=tile)["row"]) == 0
    image[23, 23] = fill + 1 if fill == 5 else 0  # one other value far from most tiles
    np.testing.assert_array_equal(
        tiled_coords(image, Peaks(1, 2, False), 5), whole(image, 2, 1, False)
    )


def test_a_single_pixel_image_is_not_constant_for_skimage():
    image = np.full((1, 1), 3.0)
    np.testing.assert_array_equal(
        tiled_coords(image, Peaks(1, 1, False), 1), whole(image, 1, 1, False)
    )
    assert len(whole(image, 1, 1, False)) == 1


def test_unsigned_order_matches_skimage_negated_key():
    image = np.zeros((9, 9), np.uint8)
    image[2, 2], image[6, 6] = 200, 50
    np.testing.assert_array_equal(tiled_coords(image, Peaks(10, 1), 4), whole(image, 1, 10))


def test_gaussian_then_peaks_on_a_real_microscopy_image():
    # scikit-image ships this immunohistochemistry image in its wheel (no download); the
    # hematoxylin channel stains nuclei. It comes without ground truth: the claim is
    # tiled == whole, with tiles that do not divide the image.
    from skimage import data
    from skimage.color import rgb2hed

    hema = rgb2hed(data.immunohistochemistry())[..., 0].astype(np.float32)
    filtered = ndimage.gaussian_filter(hema, 2, mode="mirror", truncate=4.0)
    by_tiles = tilewise.process(hema, ["gaussian:sigma=2"], tile=(97, 131))
    np.testing.assert_array_equal(by_tiles, filtered)
    expected = whole(filtered, 5, 0.03)
    np.testing.assert_array_equal(tiled_coords(by_tiles, Peaks(0.03, 5), (97, 131)), expected)
    assert len(expected) == 369


def test_parameters_are_checked():
    for bad in (None, "3", float("nan")):
        with pytest.raises(UsageError, match="threshold"):
            Peaks(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="min_distance"):
        Peaks(0, 0)
    with pytest.raises(UsageError, match="exclude_border"):
        Peaks(0, 2, -1)


def test_nan_pixels_and_short_halo_are_refused_naming_the_tile():
    image = np.zeros((10, 10), np.float32)
    image[3, 3] = np.nan
    with pytest.raises(UsageError, match=r"tile 0 .*NaN"):
        tiled(image, detect=Peaks(0, 2), tile=5)
    grid = Grid((10, 10), (5, 5), Layout.GRID, halo=1)
    with pytest.raises(GeometryError, match="halo of 3"):
        Peaks(0, 2).detect(np.zeros(grid.tile(0).read.shape), grid.tile(0), (10, 10))


def test_detector_and_parts_travel_to_workers():
    detector = Peaks(0.5, 3, (1, 2))
    image = np.random.default_rng(0).random((12, 12))
    grid = Grid(image.shape, (6, 6), Layout.GRID, halo=detector.halo)
    part = detector.detect(image[grid.tile(3).read.slices], grid.tile(3), image.shape)
    assert pickle.loads(pickle.dumps(detector)) == detector
    again = pickle.loads(pickle.dumps(part))
    np.testing.assert_array_equal(again.rows, part.rows)
