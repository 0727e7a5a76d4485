"""--allow-failed: a poison tile is filled and listed, the rest equals a clean run; exit 3."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tilewise
from tests.cli.test_cli import invoke
from tests.conftest import read_image
from tests.runner.helpers import TARGET, marked_file

POISON = "tests.faults.crash_on_marker:how=exit"


@pytest.mark.parametrize("out_name", ["out.tif", "out.zarr"])
def test_a_poison_tile_is_filled_listed_and_exits_3(tmp_path, out_name):
    src, image = marked_file(tmp_path)
    out = tmp_path / out_name
    report_path = tmp_path / "report.json"
    result = invoke(
        "run", str(src), str(out), "--op", POISON, "--op", "invert", "--tile", "64",
        "--workers", "2", "--retries", "1", "--allow-failed", "--fill", "3",
        "--report", str(report_path), "-q",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    written = read_image(out)
    expected = 255 - image  # a clean run (the crash op otherwise copies its input)
    rows, cols = slice(64, 128), slice(192, 256)  # tile 7
    assert (written[rows, cols] == 3).all()
    expected[rows, cols] = 3
    np.testing.assert_array_equal(written, expected)
    listed = json.loads((tmp_path / f"{out_name}.failed.json").read_text())
    window = {"row": 64, "col": 192, "height": 64, "width": 64}
    assert listed["fill"] == 3 and listed["tiles"] == [window]
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and report["finalized"] is True
    assert [f["tile"] for f in report["failures"]] == [TARGET]
    assert report["filled"]["tiles"] == [window]
    assert not (tmp_path / f".{out_name}.partial").exists()


def test_without_the_flag_the_output_stays_partial(tmp_path):
    src, _ = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    report = tilewise.run(src, out, [POISON], tile=64, workers=2, retries=0)
    assert report.failed == 1 and not report.finalized
    assert not out.exists() and not (tmp_path / "out.npy.failed.json").exists()


def test_a_fill_the_output_cannot_hold_is_refused_before_work(tmp_path):
    src, _ = marked_file(tmp_path)
    result = invoke(
        "run", str(src), str(tmp_path / "out.npy"), "--op", "invert",
        "--allow-failed", "--fill", "-1", "-q",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--fill -1 does not fit the output's uint8 samples" in result.output
    assert not (tmp_path / ".out.npy.partial").exists()
