"""Resume after the main process is killed (SIGKILL): finished files are not redone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.collection.conftest import REPO, TILEWISE, expected, read_whole, write_good
from tilewise.collection.collect import collect

OPS = ["tests.faults.slow:seconds=0.05", "resize:shape=16x16"]


def journaled(path):
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[1:]
    done = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            done.append(json.loads(line)["tile"])
    return done


def start(args):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [TILEWISE, "batch", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.mark.parametrize(
    ("mode", "sig"),
    [("out", signal.SIGKILL), ("stack", signal.SIGKILL), ("out", signal.SIGTERM)],
)
def test_killed_main_process_then_resume(tmp_path, mode, sig):
    root = tmp_path / "in"
    images = {
        f"d{i % 3}/{i:03d}.tif": (
            lambda i=i: np.full((40, 30), i, np.uint8) + np.eye(40, 30, dtype=np.uint8)
        )
        for i in range(60)
    }
    write_good(root, images)
    target = tmp_path / ("out" if mode == "out" else "all.npy")
    args = [str(root), f"--{mode}", str(target), "--workers", "2", "-q"]
    args += [a for op in OPS for a in ("--op", op)]
    journal = tmp_path / f".{target.name}.journal"
    proc = start(args)
    deadline = time.monotonic() + 60
    while len(journaled(journal)) < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    if sig == signal.SIGTERM:  # journal flushed, workers reaped, resumable
        assert proc.returncode == 143, err
        assert b"--resume" in err
    done_before = journaled(journal)
    assert 12 <= len(done_before) < 60
    items = collect([str(root)])
    stamps = {}
    if mode == "out":
        for i in done_before:
            stamps[i] = os.stat(target / items[i].name).st_mtime_ns
    time.sleep(0.05)
    report = tmp_path / "report.json"
    resumed = subprocess.run(
        [TILEWISE, "batch", *args, "--resume", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert resumed.returncode == 0, resumed.stderr
    files = json.loads(report.read_text())["files"]
    assert files["skipped"] == len(set(done_before))
    assert files["done"] == 60 - files["skipped"]
    assert not journal.exists()
    if mode == "out":
        for i, stamp in stamps.items():  # not rewritten
            assert os.stat(target / items[i].name).st_mtime_ns == stamp
        for item in items:
            np.testing.assert_array_equal(
                read_whole(target / item.name), expected(item.source, OPS[1:])
            )
        assert not list(target.rglob(".*"))
    else:
        array = np.load(target)
        for row, item in enumerate(items):
            np.testing.assert_array_equal(array[row], expected(item.source, OPS[1:]))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resume_refuses_a_different_batch(tmp_path):
    root = tmp_path / "in"
    write_good(root, {"a.tif": lambda: np.zeros((8, 8), np.uint8)})
    (root / "broken.tif").write_bytes(b"II*\x00")
    out = tmp_path / "out"
    first = subprocess.run(
        [TILEWISE, "batch", str(root), "--out", str(out), "--op", "invert", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 3
    other = subprocess.run(
        [
            TILEWISE,
            "batch",
            str(root),
            "--out",
            str(out),
            "--op",
            "resize:scale=2",
            "-q",
            "--resume",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 2
    assert "pipeline" in other.stderr and "differs" in other.stderr
