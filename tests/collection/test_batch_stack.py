"""``tilewise batch --stack``: one array in input order, its index, and its size rule."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import tilewise
from tests.collection.conftest import GOOD, expected, read_whole, write_bad, write_good
from tilewise.cli.app import cli
from tilewise.collection.collect import collect
from tilewise.errors import OutputExistsError, PipelineError

OPS = ["resize:shape=24x32", "to_dtype:dtype=uint8,scale=auto"]
GRAY = {k: v for k, v in GOOD.items() if k in ("a.tif", "b.tif", "nested/deeper/e.png")}
GRAY["nested/deeper/f.jpg"] = GOOD["nested/deeper/f.jpg"]


def read_index(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def load(path):
    return (
        np.asarray(zarr.open_array(path, mode="r")[...])
        if path.suffix == ".zarr"
        else np.load(path)
    )


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_rows_follow_input_order_and_the_index_names_them(tmp_path, suffix):
    root = tmp_path / "in"
    paths = write_good(root, GRAY)
    extra = write_good(tmp_path / "more", {"z_first.tif": GOOD["a.tif"]})["z_first.tif"]
    stack = tmp_path / f"all{suffix}"
    inputs = [str(extra), str(root)]
    result = tilewise.batch(inputs, stack=stack, ops=OPS, workers=2, files_per_task=2)
    assert result.ok
    order = [i.source for i in collect(inputs)]
    assert order[0] == str(extra)
    array = load(stack)
    assert array.shape == (len(order), 24, 32) and array.dtype == np.uint8
    for row, source in enumerate(order):
        np.testing.assert_array_equal(array[row], expected(source, OPS), err_msg=source)
    index = read_index(tmp_path / "all.index.csv")
    assert [r["source"] for r in index] == order
    assert [int(r["row"]) for r in index] == list(range(len(order)))
    assert {r["status"] for r in index} == {"done"}
    assert sorted(paths.values()) == sorted(map(type(extra), order[1:]))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_files_become_failed_rows_and_the_first_readable_sets_the_shape(tmp_path):
    root = tmp_path / "in"
    write_good(root, GRAY)
    bad = write_bad(root)  # bad/ sorts before the good files: the probe must skip them
    stack = tmp_path / "s.npy"
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["batch", str(root), "--stack", str(stack), "--workers", "2", "-q"]
        + [arg for op in OPS for arg in ("--op", op)],
    )
    assert res.exit_code == 3, res.output
    index = {r["source"]: r for r in read_index(tmp_path / "s.index.csv")}
    for name, word in bad.items():
        row = index[str(root / name)]
        assert row["status"] == "failed" and word in row["cause"]
        assert not load(stack)[int(row["row"])].any()
    assert sum(r["status"] == "done" for r in index.values()) == len(GRAY)


def test_a_result_of_another_size_stops_with_the_files_name(tmp_path):
    root = tmp_path / "in"
    write_good(root, {"a.tif": GOOD["a.tif"], "b.tif": GOOD["nested/c.tif"]})
    with pytest.raises(PipelineError, match=r"b\.tif: the pipeline gives 35x25x3 uint8.*a\.tif"):
        tilewise.batch(root, stack=tmp_path / "s.npy", ops="resize:scale=0.5", workers=2)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["batch", str(root), "--stack", str(tmp_path / "t.npy"), "--op", "crop:shape=20x20"],
    )
    assert res.exit_code == 2
    assert "b.tif" in res.output and "grayscale" in res.output


def test_an_existing_stack_is_kept_unless_overwrite(tmp_path):
    root = tmp_path / "in"
    write_good(root, GRAY)
    stack = tmp_path / "s.npy"
    np.save(stack, np.zeros(3))
    with pytest.raises(OutputExistsError):
        tilewise.batch(root, stack=stack, ops=OPS, workers=2)
    assert tilewise.batch(root, stack=stack, ops=OPS, workers=2, overwrite=True).ok
    assert np.load(stack).shape == (len(GRAY), 24, 32)


def test_large_files_run_tiled_and_equal_the_whole_image_result(tmp_path):
    root = tmp_path / "in"
    write_good(
        root, {"small.tif": GOOD["a.tif"], "big.tif": lambda: np.tile(GOOD["a.tif"](), (3, 2))}
    )
    ops = ["gaussian:sigma=2", "threshold:value=120"]
    out = tmp_path / "out"
    result = tilewise.batch(root, out=out, ops=ops, workers=2, tile_above=20_000, tile=64)
    assert result.ok, result.failures
    assert result.tiled == [str(root / "big.tif")]
    for name in ("small.tif", "big.tif"):
        np.testing.assert_array_equal(read_whole(out / name), expected(root / name, ops))
    # ops that change the size cannot run tiled (yet): the file is named, the rest is done
    again = tilewise.batch(root, out=tmp_path / "o2", ops=OPS, workers=2, tile_above=20_000)
    assert [f.source for f in again.failures] == [str(root / "big.tif")]
    assert "raise --tile-above" in again.failures[0].cause


def test_grayscale_and_resize_take_mixed_rgb_and_gray_files(tmp_path):
    root = tmp_path / "in"
    write_good(root, {"a.tif": GOOD["a.tif"], "c.tif": GOOD["nested/c.tif"]})
    ops = ["grayscale", "resize:shape=16x16"]
    result = tilewise.batch(root, stack=tmp_path / "s.npy", ops=ops, workers=1)
    assert result.ok, result.failures
    stack = np.load(tmp_path / "s.npy")
    assert stack.shape == (2, 16, 16)
    rows = {r["source"]: int(r["row"]) for r in read_index(tmp_path / "s.index.csv")}
    for name in ("a.tif", "c.tif"):
        np.testing.assert_array_equal(stack[rows[str(root / name)]], expected(root / name, ops))
