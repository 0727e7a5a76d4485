"""Many quick tiles (in runs, records spooled): a SIGKILL of the main process, then --resume.

The scaled-down form of ``benchmarks/million_tiles.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np

from tests.conftest import leftovers, make_image, read_image, write_image
from tests.runner.helpers import journal_lines, start_cli, wait_for_journal, wait_session_empty

TILES = 128 * 128  # over the spooling threshold: the report's records go to disk


def test_sigkill_of_the_main_process_then_resume_completes_many_quick_tiles(tmp_path):
    image = make_image((1024, 1024), "uint8")
    src = write_image(tmp_path / "in.npy", image)
    out = tmp_path / "out.npy"
    args = ["run", str(src), str(out), "--op", "invert", "--tile", "8", "--workers", "2", "-q"]
    proc = start_cli(*args)
    wait_for_journal(out, TILES // 4, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps it and closes its pipes
    assert wait_session_empty(proc.pid) == []
    journaled = journal_lines(out)
    assert 0 < journaled < TILES
    lines = out.with_name(f".{out.name}.journal").read_text().splitlines()[1:]
    finished = {json.loads(line)["tile"] for line in lines if line.endswith("}")}

    report_path = tmp_path / "report.json"
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tilewise.cli.main",
            *args,
            "--resume",
            "--report",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(read_image(out), 255 - image)
    report = json.loads(report_path.read_text())
    assert report["tiles"] == {"total": TILES, "done": TILES - len(finished), "failed": 0,
                               "skipped": len(finished)}  # fmt: skip
    redone = [t["tile"] for t in report["per_tile"]]
    assert sorted(redone) == sorted(set(range(TILES)) - finished)  # nothing finished is redone
    assert leftovers(tmp_path) == []
