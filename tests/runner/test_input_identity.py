"""Input identity beyond size and mtime: a same-size rewrite with its mtime restored is refused."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tilewise
from tests.conftest import write_image
from tests.runner.helpers import marked_image
from tilewise.errors import ResumeError
from tilewise.io._identity import content_sample


@pytest.mark.parametrize("name", ["in.npy", "in.zarr"])
def test_resume_refuses_an_input_rewritten_with_the_same_size_and_mtime(tmp_path, name):
    src = write_image(tmp_path / name, marked_image())
    out = tmp_path / "out.npy"
    ops = ["tests.faults.raise_on_marker"]
    assert tilewise.run(src, out, ops, tile=64, workers=2, retries=0).failed == 1
    before = tilewise.io.open_source(tilewise.io.SourceSpec(str(src))).identity()
    other = marked_image(seed=1)  # different pixels, same shape and dtype
    if name.endswith(".npy"):
        stamp = os.stat(src).st_mtime_ns
        write_image(src, other)
        os.utime(src, ns=(stamp, stamp))
    else:
        chunk = src / "c" / "0" / "0"
        stamp = chunk.stat().st_mtime_ns
        data = bytearray(chunk.read_bytes())
        data[-1] ^= 0xFF
        chunk.write_bytes(bytes(data))
        os.utime(chunk, ns=(stamp, stamp))
    after = tilewise.io.open_source(tilewise.io.SourceSpec(str(src))).identity()
    assert (after["size"], after["mtime_ns"]) == (before["size"], before["mtime_ns"])
    with pytest.raises(ResumeError, match=r"input\.sample: was"):
        tilewise.run(src, out, ops, tile=64, workers=2, resume=True)


def test_the_sample_is_stable_and_always_covers_the_last_block(tmp_path):
    path = tmp_path / "big.bin"
    data = np.random.default_rng(0).integers(0, 255, 3_000_000, dtype=np.uint8)
    path.write_bytes(data.tobytes())
    first = content_sample(path)
    assert content_sample(path) == first
    data[-1] ^= 0xFF  # the last block is always in the sample
    path.write_bytes(data.tobytes())
    assert content_sample(path) != first
