"""A batch never writes over its inputs: output trees overlapping input trees are refused."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import tilewise
from tests.collection.conftest import gray
from tilewise.errors import UsageError

OPS = ["invert"]


@pytest.fixture
def inputs(tmp_path):
    root = tmp_path / "data" / "in"
    (root / "sub").mkdir(parents=True)
    for name in ("a.tif", "sub/b.tif"):
        tifffile.imwrite(root / name, gray((24, 32), len(name)))
    return root


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("out", "how"),
    [
        ("data/in", "is the input"),
        ("data/in/small", "lies inside the input folder"),
        ("data", "contains the input"),
        ("link", "is the input"),
    ],
)
def test_an_output_folder_overlapping_the_input_tree_is_refused_before_work(
    tmp_path, inputs, out, how
):
    (tmp_path / "link").symlink_to(inputs)
    before = _snapshot(tmp_path / "data")
    with pytest.raises(UsageError, match=how):
        tilewise.batch(inputs, out=tmp_path / out, ops=OPS, overwrite=True, workers=1)
    assert _snapshot(tmp_path / "data") == before


def test_a_glob_tree_and_a_stack_over_an_input_are_refused(tmp_path, inputs):
    with pytest.raises(UsageError, match="lies inside the input folder"):
        tilewise.batch(f"{inputs}/**/*.tif", out=inputs / "small", ops=OPS, workers=1)
    stack = inputs / "s.npy"
    np.save(stack, gray((24, 32), 3))
    with pytest.raises(UsageError, match="stack is the input"):
        tilewise.batch([inputs / "sub", stack], stack=stack, ops=OPS, overwrite=True)
    listed = tmp_path / "files.txt"
    listed.write_text(f"{inputs / 'a.tif'}\n{stack}\n")
    with pytest.raises(UsageError, match="stack is the input"):
        tilewise.batch(f"@{listed}", stack=stack, ops=OPS, overwrite=True)
    np.testing.assert_array_equal(np.load(stack), gray((24, 32), 3))


def test_an_output_beside_the_inputs_is_fine(tmp_path, inputs):
    result = tilewise.batch(inputs, out=tmp_path / "data" / "out", ops=OPS, workers=1)
    assert result.ok and result.done == 2


def test_a_backslash_in_a_file_name_is_an_ordinary_character(tmp_path, inputs):
    tifffile.imwrite(inputs / "back\\slash.tif", gray((24, 32), 9))
    result = tilewise.batch(inputs, out=tmp_path / "out", ops=OPS, workers=1)
    assert result.ok and result.done == 3
    assert (tmp_path / "out" / "back\\slash.tif").is_file()


def test_an_input_symlinked_into_the_output_folder_is_refused(tmp_path, inputs):
    out = tmp_path / "out"
    out.mkdir()
    tifffile.imwrite(out / "x.tif", gray((24, 32), 4))
    (inputs / "x.tif").symlink_to(out / "x.tif")
    before = (out / "x.tif").read_bytes()
    with pytest.raises(UsageError, match=r"output folder contains the input .*x\.tif"):
        tilewise.batch(inputs, out=out, ops=OPS, overwrite=True, workers=1)
    assert (out / "x.tif").read_bytes() == before
