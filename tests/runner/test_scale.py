"""Scheduler load (RELIABILITY row 23, scaled down for CI): thousands of tiny tiles complete."""

from __future__ import annotations

import numpy as np

import tilewise


def test_five_thousand_tiny_tiles_complete_exactly(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (800, 800), dtype=np.uint8)
    np.save(tmp_path / "in.npy", image)
    report = tilewise.run(tmp_path / "in.npy", tmp_path / "out.npy", ["invert"], tile=11, workers=2)
    assert report.total == 73 * 73
    assert report.ok and report.done == report.total
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), 255 - image)


def test_the_memory_estimate_counts_the_read_window_of_a_rescaling_pipeline(tmp_path):
    from tests.conftest import make_image, write_image
    from tilewise.pipeline import as_pipeline
    from tilewise.runner.plan import make_plan

    src = write_image(tmp_path / "in.tif", make_image((1024, 1024)))
    ops = ["gaussian:sigma=2", "resize:scale=0.25"]
    the_plan = make_plan(src, None, as_pipeline(ops), tile=128)
    largest_read = max(tile.read.area for tile in the_plan.grid)  # 512 + 2 * 8 a side
    copies = len(the_plan.pipeline) + 2
    assert the_plan.memory_estimate(1) - 60 * 2**20 >= largest_read * 4 * copies
