"""RELIABILITY.md rows 14-16 and 22: interruptions, resume, duplicate work, damaged outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tests.runner.helpers import (
    journal_lines,
    marked_file,
    start_cli,
    wait_for_journal,
    wait_session_empty,
)
from tilewise.errors import ResumeError

SLOW = ["--op", "tests.faults.slow:seconds=0.15", "--op", "invert"]


def big_input(tmp_path: Path) -> tuple[Path, np.ndarray]:
    image = make_image((512, 512), "uint8")
    return write_image(tmp_path / "in.tif", image, tile=(64, 64)), 255 - image


@pytest.mark.parametrize("out_name", ["out.tif", "out.zarr", "out.npy"])
def test_row14_main_process_sigkill_then_resume_redoes_nothing_finished(tmp_path, out_name):
    src, expected = big_input(tmp_path)
    out = tmp_path / out_name
    args = ["run", str(src), str(out), *SLOW, "--tile", "64", "--workers", "2", "-q"]
    proc = start_cli(*args)
    done_before = wait_for_journal(out, 32, proc)  # half of 64 tiles
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # also closes its pipes
    assert wait_session_empty(proc.pid) == [], "worker processes outlived the killed run"
    assert not out.exists()
    journaled = journal_lines(out)
    assert journaled >= done_before

    report_path = tmp_path / "resume.json"
    resumed = subprocess.run(
        [*start_cli_args(), *args, "--resume", "--report", str(report_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(read_image(out), expected)
    report = json.loads(report_path.read_text())
    assert report["tiles"]["skipped"] == journaled
    assert report["tiles"]["done"] == 64 - journaled
    redone = {t["tile"] for t in report["per_tile"]}
    assert len(redone) == 64 - journaled
    assert leftovers(tmp_path) == []


def start_cli_args() -> list[str]:
    import sys

    return [sys.executable, "-m", "tilewise.cli.main"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_row15_signals_flush_reap_and_exit_resumably(tmp_path, sig, code):
    src, expected = big_input(tmp_path)
    out = tmp_path / "out.zarr"
    args = ["run", str(src), str(out), *SLOW, "--tile", "64", "--workers", "2", "-q"]
    proc = start_cli(*args)
    wait_for_journal(out, 10, proc)
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert wait_session_empty(proc.pid) == []
    journaled = journal_lines(out)
    assert journaled >= 10
    report = tilewise.run(src, out, SLOW[1::2], tile=64, workers=2, resume=True)
    assert report.ok and report.skipped == journaled
    np.testing.assert_array_equal(read_image(out), expected)


#: The real command, with a signal sent to itself as the TIFF output starts being assembled.
_SIGNAL_IN_ASSEMBLY = """
import os, signal, sys, tifffile
write = tifffile.TiffWriter.write
def write_then_signal(self, *args, **kwargs):
    os.kill(os.getpid(), signal.Signals[os.environ["SIGNAL"]])
    return write(self, *args, **kwargs)
tifffile.TiffWriter.write = write_then_signal
from tilewise.cli.main import main
sys.argv = ["tilewise", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_row15_a_signal_while_the_tiff_is_assembled_exits_resumably(tmp_path, sig, code):
    image = make_image((128, 128), "uint8")
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    out = tmp_path / "out.tif"
    args = ["run", str(src), str(out), "--op", "invert", "--tile", "64", "--workers", "1", "-q"]
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_IN_ASSEMBLY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SIGNAL": sig.name},
    )
    assert proc.returncode == code, proc.stderr
    assert f"Interrupted by {sig.name}" in proc.stderr and "--resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    report = tilewise.run(src, out, ["invert"], tile=64, workers=1, resume=True)
    assert report.ok and report.skipped == 4
    np.testing.assert_array_equal(read_image(out), 255 - image)
    assert leftovers(tmp_path) == []


def _write_tile_twice(spec_and_tile):
    from tilewise.runner.work import process_tile

    job, tile = spec_and_tile
    return process_tile(job, tile)["receipt"]


@pytest.mark.parametrize("fmt", ["tif", "zarr", "npy"])
def test_row16_the_same_tile_written_twice_concurrently_is_harmless(tmp_path, fmt):
    from tilewise.io import sink_class
    from tilewise.pipeline import Pipeline
    from tilewise.runner.plan import make_plan
    from tilewise.runner.work import TileJob

    src, expected = big_input(tmp_path)
    plan = make_plan(src, tmp_path / f"out.{fmt}", Pipeline.from_specs(["invert"]), tile=128)
    assert plan.sink is not None
    sink_class(plan.sink.format).create(plan.sink)
    job = TileJob(plan.source, plan.sink, plan.pipeline)
    receipts = {}
    with get_context("forkserver").Pool(2) as pool:
        for tile in plan.grid:
            first, second = pool.map(_write_tile_twice, [(job, tile), (job, tile)])
            assert first == second
            receipts[tile.index] = first
    sink_class(plan.sink.format).finalize(plan.sink, receipts)
    np.testing.assert_array_equal(read_image(tmp_path / f"out.{fmt}"), expected)


def test_row22_missing_or_truncated_zarr_chunks_are_found_and_redone(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.zarr"
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.raise_on_marker:fixed={fixed}"]
    first = tilewise.run(src, out, ops, tile=64, workers=2, retries=0)
    assert first.failed == 1
    partial = tmp_path / ".out.zarr.partial"
    (partial / "c" / "0" / "0").unlink()  # tile 0's chunk lost
    chunk = partial / "c" / "1" / "1"  # tile 5's chunk truncated
    chunk.write_bytes(chunk.read_bytes()[:10])
    fixed.write_text("fixed")
    again = tilewise.run(src, out, ops, tile=64, workers=2, resume=True)
    assert again.ok
    assert sorted(again.extra["redone_damaged"]) == [0, 5]
    assert sorted(t.tile for t in again.tiles) == [0, 5, 7]
    np.testing.assert_array_equal(read_image(out), image)


def test_the_sink_opened_to_verify_a_resume_is_closed(tmp_path, monkeypatch):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.zarr"
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.raise_on_marker:fixed={fixed}"]
    assert tilewise.run(src, out, ops, tile=64, workers=2, retries=0).failed == 1
    fixed.write_text("fixed")
    from tilewise.io._zarr import ZarrSink

    opened: list[Any] = []
    closed: list[Any] = []
    init, close = ZarrSink.__init__, ZarrSink.close

    def counted_init(sink: ZarrSink, spec: Any) -> None:
        opened.append(sink)
        init(sink, spec)

    def counted_close(sink: ZarrSink) -> None:
        closed.append(sink)
        close(sink)

    monkeypatch.setattr(ZarrSink, "__init__", counted_init)
    monkeypatch.setattr(ZarrSink, "close", counted_close)
    again = tilewise.run(src, out, ops, tile=64, workers=2, resume=True)  # workers elsewhere
    assert again.ok
    assert len(opened) == 1 and closed == opened  # the main process's verifying sink
    np.testing.assert_array_equal(read_image(out), image)


def test_row22_a_damaged_npy_region_is_found_by_its_checksum(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.raise_on_marker:fixed={fixed}"]
    assert tilewise.run(src, out, ops, tile=64, workers=2, retries=0).failed == 1
    partial = np.load(tmp_path / ".out.npy.partial", mmap_mode="r+")
    partial[0:10, 0:10] = 0  # scribble over tile 0
    partial.flush()
    del partial
    fixed.write_text("fixed")
    again = tilewise.run(src, out, ops, tile=64, workers=2, resume=True)
    assert again.extra["redone_damaged"] == [0]
    np.testing.assert_array_equal(read_image(out), image)


def test_resume_with_a_different_pipeline_or_grid_is_refused(tmp_path):
    src, _ = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    ops = ["tests.faults.raise_on_marker"]
    assert tilewise.run(src, out, ops, tile=64, workers=2, retries=0).failed == 1
    with pytest.raises(ResumeError, match=r"pipeline.*raise_on_marker.*invert"):
        tilewise.run(src, out, ["invert"], tile=64, resume=True)
    with pytest.raises(ResumeError, match="tile_shape"):
        tilewise.run(src, out, ops, tile=32, resume=True)
    with pytest.raises(ResumeError, match="--resume"):
        tilewise.run(src, out, ops, tile=64)  # neither --resume nor --overwrite
