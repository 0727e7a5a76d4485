"""Temp folders left by killed runs (multiprocessing's ``pymp-*``) are removed by the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

from tests.conftest import make_image, read_image, write_image
from tests.runner.helpers import start_cli, wait_for_journal
from tilewise._procs import HOST, identity
from tilewise.executors._pymp import OWNER_FILE, sweep


def _pymp(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("pymp-"))


def test_the_temp_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    src = write_image(tmp_path / "in.tif", make_image((256, 256)), tile=(64, 64))
    out = tmp_path / "out.zarr"
    ops = ["--op", "tests.faults.slow:seconds=0.05", "--op", "invert"]
    args = ["run", str(src), str(out), *ops, "--tile", "64", "--workers", "1", "-q"]
    killed = start_cli(*args, env=env)
    wait_for_journal(out, 1, killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    left = _pymp(temp)
    assert len(left) == 1
    assert json.loads((temp / left[0] / OWNER_FILE).read_text())["pid"] == killed.pid
    resumed = subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args, "--resume"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(read_image(out), 255 - make_image((256, 256)))
    assert _pymp(temp) == []


def test_only_folders_of_gone_tilewise_processes_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    owners = {
        "pymp-gone": {"pid": int(gone.stdout), "host": HOST, "start": "1"},
        "pymp-live": identity(),
        "pymp-reused": {**identity(), "start": "1"},  # this pid, but another process's start
        "pymp-other-host": {"pid": int(gone.stdout), "host": "elsewhere.example"},
        "pymp-foreign": None,  # no owner recorded: not tilewise's
    }
    for name, owner in owners.items():
        (tmp_path / name).mkdir()
        if owner is not None:
            (tmp_path / name / OWNER_FILE).write_text(json.dumps(owner))
    (tmp_path / "other-gone").mkdir()
    (tmp_path / "other-gone" / OWNER_FILE).write_text(json.dumps(owners["pymp-gone"]))
    removed = sweep()
    assert sorted(os.path.basename(p) for p in removed) == ["pymp-gone", "pymp-reused"]
    assert _pymp(tmp_path) == ["pymp-foreign", "pymp-live", "pymp-other-host"]
