"""Chunks written by the worker are the chunks Zarr writes, and read back by Zarr."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from tilewise.geometry import Window
from tilewise.io._zarr import chunk_file
from tilewise.io._zarr_chunks import ChunkWriter

SHAPE = (70, 45)
CHUNKS = (32, 20)


def _zarr_array(path, bands, dtype, compress):
    chunks = CHUNKS if bands == 1 else (*CHUNKS, bands)
    shape = SHAPE if bands == 1 else (*SHAPE, bands)
    return zarr.create_array(
        path,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compressors=[ZstdCodec(level=3)] if compress == "ZSTD" else None,
        fill_value=0,
    )


@pytest.mark.parametrize(("bands", "dtype"), [(1, "uint8"), (3, "uint16"), (1, "float32")])
@pytest.mark.parametrize("compress", ["ZSTD", "NONE"])
def test_chunk_files_equal_zarrs_and_read_back(tmp_path, bands, dtype, compress):
    rng = np.random.default_rng(7)
    shape = SHAPE if bands == 1 else (*SHAPE, bands)
    image = (rng.random(shape) * 200).astype(dtype)
    image[: CHUNKS[0], : CHUNKS[1]] = 0  # a chunk equal to the fill value is left out
    by_zarr = _zarr_array(tmp_path / "zarr.zarr", bands, dtype, compress)
    by_zarr[...] = image
    ours = _zarr_array(tmp_path / "ours.zarr", bands, dtype, compress)
    root = tmp_path / "ours.zarr"
    writer = ChunkWriter(
        SHAPE, CHUNKS, bands, dtype, compress, 3, root, lambda k: chunk_file(root, k)
    )
    receipts = {}
    for row in range(0, SHAPE[0], CHUNKS[0]):  # windows of two chunks side by side, edges odd
        for col in range(0, SHAPE[1], 2 * CHUNKS[1]):
            window = Window(row, col, min(CHUNKS[0], SHAPE[0] - row), min(40, SHAPE[1] - col))
            written = writer.write(window, image[window.slices])
            assert written is not None
            receipts.update(written)
    band = (0,) if bands > 1 else ()
    for r in range(3):
        for c in range(3):
            name = "/".join(map(str, ("c", r, c, *band)))
            expected = chunk_file(tmp_path / "zarr.zarr", (r, c, *band))
            got = chunk_file(root, (r, c, *band))
            assert got.exists() == expected.exists(), name
            if expected.exists():
                assert got.read_bytes() == expected.read_bytes(), name
                assert receipts[name][0] == got.stat().st_size
            else:
                assert receipts[name] == (0, 0)
    np.testing.assert_array_equal(ours[...], image)


def test_a_window_covering_part_of_a_chunk_is_left_to_zarr(tmp_path):
    writer = ChunkWriter(
        SHAPE, CHUNKS, 1, "uint8", "ZSTD", 3, tmp_path, lambda k: chunk_file(tmp_path, k)
    )
    assert writer.write(Window(0, 0, 16, 20), np.ones((16, 20), np.uint8)) is None
    assert writer.write(Window(32, 5, 32, 15), np.ones((32, 15), np.uint8)) is None
    assert not any(tmp_path.iterdir())


def test_negative_zero_is_kept(tmp_path):
    array = _zarr_array(tmp_path / "a.zarr", 1, "float32", "ZSTD")
    root = tmp_path / "a.zarr"
    writer = ChunkWriter(
        SHAPE, CHUNKS, 1, "float32", "ZSTD", 3, root, lambda k: chunk_file(root, k)
    )
    negative_zero = np.full(CHUNKS, -0.0, np.float32)
    writer.write(Window(0, 0, *CHUNKS), negative_zero)
    assert np.signbit(array[: CHUNKS[0], : CHUNKS[1]]).all()
