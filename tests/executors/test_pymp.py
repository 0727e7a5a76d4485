"""Temp folders left by killed runs (multiprocessing's ``pymp-*``) are removed by the next run.

The real-process case (SIGKILL a run, resume it) is in ``tests/runner/test_lock.py``,
with the lock that run leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from tilewise._procs import HOST, identity
from tilewise.executors._pymp import OWNER_FILE, sweep


def _pymp(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("pymp-"))


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
