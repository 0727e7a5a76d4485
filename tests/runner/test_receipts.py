"""Receipts that prove the bytes: a same-size damaged chunk or segment is found and redone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tilewise
from tests.conftest import read_image
from tests.runner.helpers import marked_file
from tilewise.io._checksum import crc32c, file_crc32c


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("name", "damaged_file"), [("out.zarr", "c/0/0"), ("out.tif", None)])
def test_a_same_size_damaged_chunk_is_redone_on_resume(tmp_path, name, damaged_file):
    src, image = marked_file(tmp_path)
    out = tmp_path / name
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.raise_on_marker:fixed={fixed}"]
    assert tilewise.run(src, out, ops, tile=64, workers=2, retries=0).failed == 1
    partial = tmp_path / f".{name}.partial"
    target = partial / (damaged_file or "tile-0000000.seg")
    size = target.stat().st_size
    _flip_middle_byte(target)
    assert target.stat().st_size == size
    fixed.write_text("fixed")
    again = tilewise.run(src, out, ops, tile=64, workers=2, resume=True)
    assert again.ok
    assert again.extra["redone_damaged"] == [0]
    np.testing.assert_array_equal(read_image(out), image)


def test_file_crc32c_matches_the_bytes_and_says_when_the_file_is_short(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 1000)
    assert file_crc32c(path) == crc32c(path.read_bytes())
    assert file_crc32c(path, 10, 20) == crc32c(b"0123456789" * 2)
    assert file_crc32c(path, 9990, 20) is None
    assert file_crc32c(tmp_path / "missing") is None
