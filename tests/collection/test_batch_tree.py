"""``tilewise batch --out``: the output tree, formats, bad files, hostile names, executors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import tilewise
from tests.collection.conftest import GOOD, expected, read_whole, write_bad, write_good
from tilewise.cli.app import cli
from tilewise.errors import OutputExistsError, ResumeError

OPS = ["resize:scale=0.5", "pad:width=2,mode=edge"]


def check_tree(in_root, out_root, ops, names, *, fmt_suffix=None):
    for name in names:
        out_name = name if fmt_suffix is None else name.rsplit(".", 1)[0] + fmt_suffix
        got = read_whole(out_root / out_name)
        want = expected(in_root / name, ops)
        if name.endswith((".jpg", ".jpeg")) and fmt_suffix is None:
            assert got.shape == want.shape  # JPEG is re-encoded (lossy)
            assert np.abs(got.astype(int) - want.astype(int)).mean() < 8
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_outputs_mirror_nested_mixed_inputs(collection, tmp_path):
    out = tmp_path / "out"
    result = tilewise.batch(collection, out=out, ops=OPS, workers=2, files_per_task=2)
    assert result.ok, result.failures
    assert (result.total, result.done, result.failed) == (len(GOOD), len(GOOD), 0)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(GOOD)
    check_tree(collection, out, OPS, GOOD)
    assert not (tmp_path / ".out.journal").exists()  # a finished batch leaves no journal
    assert not list(out.rglob(".*"))  # no temporary files


def test_format_option_converts_every_output(collection, tmp_path):
    out = tmp_path / "out"
    result = tilewise.batch(
        str(collection), out=str(out), ops=OPS, format="npy", workers=2, executor="local"
    )
    assert result.ok
    check_tree(collection, out, OPS, GOOD, fmt_suffix=".npy")
    assert np.load(out / "nested" / "c.npy").shape == (35 + 4, 25 + 4, 3)


def test_jpeg_and_png_limits_are_reported_per_file(tmp_path):
    root = tmp_path / "in"
    write_good(root, {k: v for k, v in GOOD.items() if k in ("a.tif", "b.tif")})
    result = tilewise.batch(
        root, out=tmp_path / "out", ops=["to_dtype:dtype=float32"], format="png", workers=2
    )
    assert result.failed == 2
    assert all("PNG cannot hold a 1-band float32" in f.cause for f in result.failures)


def test_bad_files_are_named_with_their_cause_and_the_rest_is_done(collection, tmp_path):
    bad = write_bad(collection)
    out, report = tmp_path / "out", tmp_path / "report.json"
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["batch", str(collection), "--out", str(out), "--workers", "2", "-q"]
        + [arg for op in OPS for arg in ("--op", op)]
        + ["--report", str(report)],
    )
    assert res.exit_code == 3, res.output
    data = json.loads(report.read_text())
    assert data["files"] == {
        "total": len(GOOD) + len(bad),
        "done": len(GOOD),
        "failed": len(bad),
        "skipped": 0,
    }
    causes = {os.path.relpath(f["file"], collection): f["cause"] for f in data["failures"]}
    assert set(causes) == set(bad)
    for name, word in bad.items():
        assert word in causes[name], causes[name]
        assert f"{collection / name}:" in res.output  # named on stderr too
    assert "struct.error" not in res.output
    check_tree(collection, out, OPS, GOOD)


def test_a_symlink_in_the_output_folder_cannot_lead_writes_out(collection, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "nested").symlink_to(outside, target_is_directory=True)
    result = tilewise.batch(collection, out=out, ops=OPS, workers=2, overwrite=True)
    nested = [n for n in GOOD if n.startswith("nested/")]
    assert result.failed == len(nested)
    assert all("outside the output folder" in f.cause for f in result.failures)
    assert list(outside.iterdir()) == []
    check_tree(collection, out, OPS, [n for n in GOOD if n not in nested])


def test_a_symlinked_output_folder_is_followed_once(collection, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    result = tilewise.batch(collection, out=link, ops=OPS, workers=2)
    assert result.ok
    check_tree(collection, real, OPS, GOOD)


def test_hostile_list_entries_stay_inside_the_output_folder(tmp_path):
    root = tmp_path / "data"
    paths = write_good(root, {"x/a.tif": GOOD["a.tif"], "y.png": GOOD["nested/d.png"]})
    listing = tmp_path / "lists" / "deep" / "files.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text(f"../../data/x/a.tif\n{paths['y.png']}\n")
    out = tmp_path / "lists" / "out"
    result = tilewise.batch(f"@{listing}", out=out, ops=OPS, workers=2)
    assert result.ok
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["x/a.tif", "y.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "lists"]


def test_an_existing_output_folder_needs_overwrite_or_resume(collection, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        tilewise.batch(collection, out=out, ops=OPS, workers=2)
    runner = CliRunner()
    res = runner.invoke(cli, ["batch", str(collection), "--out", str(out), "--op", OPS[0], "-q"])
    assert res.exit_code == 2
    assert "not empty" in res.output
    assert tilewise.batch(collection, out=out, ops=OPS, workers=2, overwrite=True).ok
    assert (out / "old.txt").read_text() == "keep me"


def test_a_failed_batch_resumes_only_its_failures(collection, tmp_path):
    (collection / "late.tif").write_bytes(b"")
    out = tmp_path / "out"
    first = tilewise.batch(collection, out=out, ops=OPS, workers=2)
    assert first.failed == 1
    with pytest.raises(ResumeError, match="--resume"):
        tilewise.batch(collection, out=out, ops=OPS, workers=2)
    write_good(collection, {"late.tif": GOOD["a.tif"]})  # fixed in place
    again = tilewise.batch(collection, out=out, ops=OPS, workers=2, resume=True)
    assert (again.done, again.skipped, again.failed) == (1, len(GOOD), 0)
    assert again.ok
    check_tree(collection, out, OPS, [*GOOD, "late.tif"])


@pytest.mark.parametrize("fmt", ["tiff", "zarr"])
def test_local_and_serial_executors_write_identical_outputs(collection, tmp_path, fmt):
    outputs = {}
    for name in ("local", "serial"):
        out = tmp_path / name
        assert tilewise.batch(collection, out=out, ops=OPS, executor=name, format=fmt).ok
        outputs[name] = out
    suffix = ".tif" if fmt == "tiff" else ".zarr"
    for name in GOOD:
        rel = name.rsplit(".", 1)[0] + suffix
        np.testing.assert_array_equal(
            read_whole(outputs["local"] / rel), read_whole(outputs["serial"] / rel)
        )


def test_a_worker_crash_costs_only_its_file(tmp_path):
    from tests.faults import MARKER

    root = tmp_path / "in"
    images = {f"{i:02d}.tif": (lambda i=i: np.full((20, 30), 100 + i, np.uint8)) for i in range(12)}
    write_good(root, images)
    poison = np.full((20, 30), 100, np.uint8)
    poison[3, 4] = MARKER
    write_good(root, {"05.tif": lambda: poison})
    result = tilewise.batch(
        root,
        out=tmp_path / "out",
        ops=["tests.faults.crash_on_marker:how=abort"],
        workers=2,
        files_per_task=4,
        retries=1,
    )
    assert [os.path.basename(f.source) for f in result.failures] == ["05.tif"]
    assert "SIGABRT" in result.failures[0].cause
    assert result.done == 11


def test_the_python_api_is_exported():
    assert "batch" in tilewise.__all__
    assert "BatchReport" in tilewise.__all__
    assert tilewise.batch.__module__ == "tilewise.collection.run"


def test_planted_symlinks_at_output_and_temporary_names_are_not_followed(collection, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.tif").symlink_to(victim)  # the output's own name
    (out / ".b.tif.partial").symlink_to(victim)  # the temporary name a worker writes first
    result = tilewise.batch(collection, out=out, ops=OPS, workers=2, overwrite=True)
    assert result.ok, result.failures
    assert victim.read_text() == "precious"
    assert not (out / "a.tif").is_symlink()
    assert not os.path.lexists(out / ".b.tif.partial")
    check_tree(collection, out, OPS, ["a.tif", "b.tif"])


def test_a_hanging_file_times_out_alone(tmp_path):
    from tests.faults import MARKER

    root = tmp_path / "in"
    write_good(
        root, {f"{i}.tif": (lambda i=i: np.full((10, 10), 100 + i, np.uint8)) for i in range(6)}
    )
    stuck = np.full((10, 10), 100, np.uint8)
    stuck[5, 5] = MARKER
    write_good(root, {"3.tif": lambda: stuck})
    result = tilewise.batch(
        root,
        out=tmp_path / "out",
        ops=["tests.faults.hang_on_marker"],
        workers=2,
        files_per_task=2,
        timeout=1.0,
        retries=0,
    )
    assert [os.path.basename(f.source) for f in result.failures] == ["3.tif"]
    assert "timed out after 1 s" in result.failures[0].cause
    assert result.done == 5
