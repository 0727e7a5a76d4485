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
