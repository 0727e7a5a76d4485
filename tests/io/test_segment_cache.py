"""The decoded-segment cache of TIFF reads: each segment decoded once for haloed tiles in order,
and every read equal to the image whatever the cache kept."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tilewise.geometry import Window
from tilewise.io._segment_cache import SegmentCache
from tilewise.io._tiff import TiffSource

from ..conftest import make_image


def _haloed_tiles(shape: tuple[int, int], tile: int, halo: int) -> list[Window]:
    windows = []
    for row in range(0, shape[0], tile):
        for col in range(0, shape[1], tile):
            top, left = max(0, row - halo), max(0, col - halo)
            bottom = min(shape[0], row + tile + halo)
            right = min(shape[1], col + tile + halo)
            windows.append(Window(top, left, bottom - top, right - left))
    return windows


def _counting(source: TiffSource) -> list[int]:
    decoded: list[int] = []
    decode = source._decode_segment

    def counted(page, index, br, bc):
        decoded.append(index)
        return decode(page, index, br, bc)

    source._decode_segment = counted  # type: ignore[method-assign]
    return decoded


def test_haloed_tiles_in_row_order_decode_each_segment_once(tmp_path, opened):
    image = make_image((1024, 1024))
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, image, tile=(64, 64), compression="deflate")
    source = opened(path, TiffSource)
    # 80 segments of 4 KiB: a tile (36), a row's bottom halos (18) and some, but not the
    # ~100 a plain LRU needs to keep the tile above until the tile below comes
    source._cache = SegmentCache(64, 64 << 10, budget=320 << 10, strip_budget=16 << 10)
    decoded = _counting(source)
    for window in _haloed_tiles(image.shape, 256, 8):
        np.testing.assert_array_equal(source.read(window), image[window.slices])
    assert sorted(decoded) == list(range(256))  # each of the 16 x 16 segments once
    assert source._cache.tail_rows == 8


@pytest.mark.parametrize("budget", [0, 20 << 10, 200 << 10])
@pytest.mark.parametrize("strip_budget", [0, 2 << 10, 64 << 10])
def test_reads_equal_the_image_whatever_is_kept(tmp_path, opened, budget, strip_budget):
    image = make_image((300, 420), bands=3, seed=3)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, image, tile=(32, 48), compression="deflate", photometric="rgb")
    source = opened(path, TiffSource)
    source._cache = SegmentCache(32, 9 * 32 * 48 * 3, budget=budget, strip_budget=strip_budget)
    rng = np.random.default_rng(0)
    windows = _haloed_tiles(image.shape[:2], 96, 10) + _haloed_tiles(image.shape[:2], 64, 5)
    for _ in range(40):
        top, left = int(rng.integers(0, 290)), int(rng.integers(0, 410))
        height, width = int(rng.integers(1, 300 - top + 1)), int(rng.integers(1, 420 - left + 1))
        windows.append(Window(top, left, height, width))
    for window in windows:
        np.testing.assert_array_equal(source.read(window), image[window.slices])


def test_last_rows_serve_a_top_halo_after_the_segment_is_evicted():
    cache = SegmentCache(8, 0, budget=8 * 4, strip_budget=64)
    first = np.arange(32, dtype=np.uint8).reshape(8, 4, 1)
    cache.put(1, first, whole=True)
    assert cache.get(2, 0, 2, whole=False) is None  # a halo of 2 rows reaches into segment 2
    assert cache.tail_rows == 2
    cache.put(2, np.zeros((8, 4, 1), np.uint8), whole=False)  # evicts segment 1, keeps 2 rows
    assert 1 not in cache and cache.has(1, 6, 8) and not cache.has(1, 5, 8)
    kept = cache.get(1, 6, 8, whole=False)
    assert kept is not None
    strip, first_row = kept
    assert first_row == 6
    np.testing.assert_array_equal(strip, first[6:])


def test_segments_not_yet_used_whole_outlive_those_that_were():
    cache = SegmentCache(8, 0, budget=4 * 32, strip_budget=0)

    def segment() -> np.ndarray:
        return np.zeros((8, 4, 1), np.uint8)

    cache.put(1, segment(), whole=False)  # a halo's segment: its tile will need it all
    cache.put(2, segment(), whole=True)
    cache.put(3, segment(), whole=True)
    cache.put(4, segment(), whole=True)
    cache.put(5, segment(), whole=True)  # evicts 2, the oldest used whole, not 1
    assert 1 in cache and 2 not in cache and 3 in cache and 4 in cache
    assert cache.get(1, 0, 8, whole=True) is not None  # now used whole: evicted like the rest
    for key in (6, 7, 8):
        cache.put(key, segment(), whole=True)  # evicts 3, 4, 5: 1 was used after them
    assert 1 in cache and not {3, 4, 5} & {k for k in range(9) if k in cache}
    cache.put(9, segment(), whole=True)
    assert 1 not in cache
    cache.put(10, segment(), whole=False)
    cache.put(11, segment(), whole=False)
    cache.put(12, segment(), whole=False)  # half the budget: the oldest not-yet-whole goes
    assert 10 not in cache and 11 in cache and 12 in cache


def test_a_row_of_segments_wider_than_half_the_budget_is_kept_by_use_alone():
    cache = SegmentCache(8, 3 * 32, budget=4 * 32, strip_budget=0)
    for key in range(4):
        cache.put(key, np.zeros((8, 4, 1), np.uint8), whole=key == 0)
    cache.put(4, np.zeros((8, 4, 1), np.uint8), whole=True)
    cache.put(5, np.zeros((8, 4, 1), np.uint8), whole=True)
    assert 0 not in cache and 1 not in cache and 2 in cache  # 1 went though never used whole
