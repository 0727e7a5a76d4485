"""RELIABILITY.md row 17: output faults. The file-size limit (RLIMIT_FSIZE, with SIGXFSZ
ignored) stands in for a full disk: writes past it fail with EFBIG, as they would with ENOSPC."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

import tilewise
from tests.conftest import make_image, read_image, write_image


def limited(limit_bytes):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return preexec


def cli(*args, limit=None):
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=limited(limit) if limit else None,
    )


def test_row17_the_first_tile_write_to_a_full_disk_stops_the_run_and_resume_completes(tmp_path):
    image = make_image((512, 512))
    src = write_image(tmp_path / "in.tif", image, compression=None, tile=None)
    out = tmp_path / "out.tif"
    args = [
        "run",
        str(src),
        str(out),
        "--op",
        "invert",
        "--tile",
        "128",
        "--co",
        "COMPRESS=NONE",
        "-q",
    ]
    first = tmp_path / "first.json"
    proc = cli(*args, "--report", str(first), limit=10_000)  # each spooled tile is 16 KiB
    assert proc.returncode == 3, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert "stopped the run" in line and "File too large" in line and "--resume" in line
    assert ".out.tif.partial" in line  # the path named
    assert not out.exists()
    report = json.loads(first.read_text())
    # the first failure stopped the run: not retried (--retries is 2 by default), and the
    # other 15 tiles were not tried in turn (the ones under way were stopped)
    [failure] = report["failures"]
    assert failure["kind"] == "environment" and failure["attempts"] == 1
    assert report["stopped_by"].startswith(f"tile {failure['tile']}: ")
    assert len(report["per_tile"]) == 1 and report["tiles"]["done"] == 0
    again = cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(read_image(out), 255 - image)


def test_row17_final_assembly_failing_leaves_no_partial_file_under_the_final_name(tmp_path):
    image = make_image((512, 512))
    src = write_image(tmp_path / "in.tif", image)
    out = tmp_path / "out.tif"
    args = [
        "run",
        str(src),
        str(out),
        "--op",
        "invert",
        "--tile",
        "128",
        "--co",
        "COMPRESS=NONE",
        "-q",
    ]
    proc = cli(*args, limit=100_000)  # tiles fit, the 256 KiB assembled TIFF does not
    assert proc.returncode == 1, proc.stderr
    assert f"{out}: cannot write the TIFF" in proc.stderr and "--resume" in proc.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tif.assembling"))
    again = cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(read_image(out), 255 - image)


def test_row17_npy_output_reserves_its_space_up_front(tmp_path):
    image = make_image((512, 512))
    src = write_image(tmp_path / "in.tif", image)
    proc = cli("run", str(src), str(tmp_path / "out.npy"), "--op", "invert", limit=100_000)
    assert proc.returncode == 2
    assert ".out.npy.partial: cannot create the .npy output: File too large" in proc.stderr
    assert not list(tmp_path.glob(".out.npy*"))


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    image = make_image((64, 64))
    src = write_image(tmp_path / "in.tif", image)
    missing = tmp_path / "no" / "such" / "dir" / "out.tif"
    with pytest.raises(tilewise.TilewiseError, match="output directory does not exist"):
        tilewise.run(src, missing, ["invert"])


def test_row17_a_journal_that_cannot_be_written_stops_the_run_naming_it(tmp_path):
    # 64 tiles of 8 x 8: the journal outgrows the limit, the 4 KiB .npy output does not.
    image = make_image((64, 64))
    src = write_image(tmp_path / "in.tif", image, compression=None, tile=None)
    out = tmp_path / "out.npy"
    args = ["run", str(src), str(out), "--op", "invert", "--tile", "8", "--workers", "1", "-q"]
    proc = cli(*args, limit=4300)
    assert proc.returncode == 1, proc.stderr
    assert ".out.npy.journal: cannot write the journal" in proc.stderr
    assert "--resume" in proc.stderr and "Traceback" not in proc.stderr
    again = cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(np.load(out), 255 - image)
