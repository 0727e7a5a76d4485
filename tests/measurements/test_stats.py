"""Statistics merged from tiles equal NumPy on the whole image (floats within the stated bounds)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tilewise.errors import UsageError
from tilewise.geometry import Grid, Layout
from tilewise.measurements import Stats, stats_table, tiled

Q = (0.0, 1.0, 5.0, 33.3, 50.0, 95.0, 99.9, 100.0)
#: many fractions, so both of NumPy's interpolation formulas (below and above 0.5) are used
FINE = tuple(np.linspace(0, 100, 203).tolist())


def integer_image(dtype, shape=(41, 37), bands=2, seed=0):
    info = np.iinfo(dtype)
    low, high = max(info.min, -3000), min(info.max, 3000)
    rng = np.random.default_rng(seed)
    return rng.integers(low, high, (*shape, bands), endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_small_integers_are_exact(dtype):
    image = integer_image(dtype)
    nodata = int(image[0, 0, 0])
    result = tiled(image, detect=Stats(nodata=nodata, percentiles=FINE), tile=(6, 11))
    for band, got in enumerate(result):
        plane = image[:, :, band].ravel()
        v = plane[plane != nodata]
        assert got.method == "exact"
        assert (got.count, got.nodata_count) == (v.size, plane.size - v.size)
        assert (got.minimum, got.maximum) == (v.min(), v.max())
        assert got.mean == np.mean(v)
        assert got.std == pytest.approx(np.std(v), rel=1e-12)
        assert [got.percentiles[q] for q in FINE] == np.percentile(v, FINE).tolist()
        hist, edges = np.histogram(v, 256)
        np.testing.assert_array_equal(got.histogram, hist)
        np.testing.assert_array_equal(got.bin_edges, edges)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_streamed_within_the_stated_bounds(dtype):
    rng = np.random.default_rng(1)
    image = rng.normal(100, 30, (43, 39)).astype(dtype)
    if dtype != "int32":
        image[::5, ::3] = np.nan
        image[0:7, 0:7] = -0.0
    v = image[~np.isnan(image)] if dtype != "int32" else image.ravel()
    hist_range = (-50.0, 250.0)
    got = tiled(image, detect=Stats(percentiles=Q, bins=13, range=hist_range), tile=(7, 5))[0]
    assert got.method == "streamed"
    assert (got.count, got.nodata_count) == (v.size, image.size - v.size)
    assert (got.minimum, got.maximum) == (v.min(), v.max())
    assert got.mean == pytest.approx(np.mean(v, dtype=np.float64), rel=1e-12)
    assert got.std == pytest.approx(np.std(v, dtype=np.float64), rel=1e-12)
    ref = np.percentile(v, Q)
    for q, expected in zip(Q, ref, strict=True):
        assert abs(got.percentiles[q] - expected) <= 2**-10 * abs(expected)
    np.testing.assert_array_equal(got.histogram, np.histogram(v, 13, hist_range)[0])


def test_streamed_percentiles_are_exact_when_bins_hold_one_value():
    image = np.random.default_rng(2).integers(0, 1000, (30, 30)).astype(np.float32)
    got = tiled(image, detect=Stats(percentiles=Q), tile=7)[0]
    assert [got.percentiles[q] for q in Q] == np.percentile(image, Q).tolist()
    assert got.histogram is None  # floats need a range for a histogram


def test_merge_order_does_not_matter():
    image = integer_image("int16", bands=1)[:, :, 0].astype(np.float64) / 7
    detector = Stats(percentiles=Q)
    grid = Grid(image.shape, (5, 8), Layout.GRID)
    parts = [detector.detect(image[t.read.slices], t, image.shape) for t in grid]
    results = []
    for seed in (0, 1):
        random.Random(seed).shuffle(parts)
        merger = detector.merger(grid)
        for part in parts:
            merger.add(part)
        results.append(merger.finish()[0])
    assert results[0].percentiles == results[1].percentiles
    assert results[0].mean == pytest.approx(results[1].mean, rel=1e-14)


def test_all_nodata_band_and_table_and_json():
    image = np.full((6, 6), 7, np.uint8)
    [got] = tiled(image, detect=Stats(nodata=7), tile=4)
    assert (got.count, got.nodata_count) == (0, 36)
    assert np.isnan(got.mean)
    json.dumps(got.to_dict())
    image[3:, 2:] = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20  # tiles of only nodata too
    [got] = tiled(image, detect=Stats(nodata=7, percentiles=Q), tile=2)
    v = image[image != 7]
    assert (got.count, got.minimum, got.maximum) == (v.size, v.min(), v.max())
    assert [got.percentiles[q] for q in Q] == np.percentile(v, Q).tolist()
    table = stats_table(tiled(integer_image("uint8"), detect=Stats(), tile=9))
    assert table["band"].tolist() == [0, 1]
    assert "p50" in table


def test_parameters_are_checked():
    with pytest.raises(UsageError, match="percentiles"):
        Stats(percentiles=(101.0,))
    with pytest.raises(UsageError, match="range"):
        Stats(range=(5.0, 1.0))
    with pytest.raises(UsageError, match="bins"):
        Stats(bins=0)


def test_percentiles_between_distant_values_match_numpy_to_the_last_bit():
    image = np.random.default_rng(3).integers(0, 65536, (7, 9)).astype(np.uint16)
    got = tiled(image, detect=Stats(percentiles=FINE), tile=4)[0]
    assert [got.percentiles[q] for q in FINE] == np.percentile(image, FINE).tolist()


@pytest.mark.parametrize("dtype", ["uint8", "int16"])
@pytest.mark.parametrize("nodata", [None, 2.5, -40000.0, 3.0])
def test_counts_stay_exact_across_histogram_calls_and_nodata_is_compared_as_a_number(
    monkeypatch, dtype, nodata
):
    # OpenCV's float32 counts are exact up to 2**24 pixels a call; tiles count in calls of at
    # most that many. A tiny call size makes every tile (and a one-value tile) take several.
    from tilewise.measurements import stats as stats_module

    monkeypatch.setattr(stats_module, "_CHUNK", 7)
    image = integer_image(dtype, shape=(23, 19), bands=1)[:, :, 0]
    image[:6, :6] = 3  # one value over a whole 6x6 tile
    image[-1, -1], image[0, -1] = np.iinfo(dtype).min, np.iinfo(dtype).max
    [got] = tiled(image, detect=Stats(nodata=nodata, percentiles=Q), tile=6)
    v = image.ravel() if nodata is None else image[image != nodata]
    assert (got.count, got.nodata_count) == (v.size, image.size - v.size)
    assert (got.minimum, got.maximum, got.mean) == (v.min(), v.max(), np.mean(v))
    assert [got.percentiles[q] for q in Q] == np.percentile(v, Q).tolist()
    np.testing.assert_array_equal(got.histogram, np.histogram(v, 256)[0])
