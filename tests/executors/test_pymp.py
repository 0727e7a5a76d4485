"""Temp folders left by killed runs (multiprocessing's ``pymp-*``) are removed by the next run.

The real-process case (SIGKILL a run, resume it) is in ``tests/runner/test_lock.py``,
with the lock that run leaves.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from tilewise._procs import HOST, identity
from tilewise.executors._pymp import GRACE_S, OWNER_FILE, sweep


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


def test_a_torn_owner_record_is_removed_once_old_and_unused(tmp_path, monkeypatch):
    """A kill between creating the owner record and writing it leaves it empty."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = time.time() - GRACE_S - 5
    records = {"pymp-empty": "", "pymp-cut": '{"pid": 12', "pymp-fresh": "", "pymp-busy": ""}
    for name, text in records.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / OWNER_FILE).write_text(text)
        if name != "pymp-fresh":  # just written: its owner may be writing it right now
            os.utime(tmp_path / name / OWNER_FILE, (old, old))
    with socket.socket(socket.AF_UNIX) as listener:  # a live fork server's socket
        listener.bind(str(tmp_path / "pymp-busy" / "listener-1"))
        listener.listen()
        removed = sweep()
    assert sorted(os.path.basename(p) for p in removed) == ["pymp-cut", "pymp-empty"]
    assert _pymp(tmp_path) == ["pymp-busy", "pymp-fresh"]


def test_the_owner_is_recorded_before_the_fork_server_makes_its_socket(tmp_path):
    """Starting the fork server claims its folder first, with a whole record."""
    script = """if True:
        import json, os
        from multiprocessing import util
        from tilewise.executors.forkserver import start_forkserver
        start_forkserver("run")
        folder = util.get_temp_dir()
        made = {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)}
        record = open(os.path.join(folder, "tilewise-owner.json")).read()
        print(json.dumps([made, record]))
    """
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    made, record = json.loads(done.stdout)
    assert json.loads(record)["pid"] > 0
    sockets = [name for name in made if name.startswith("listener-")]
    assert len(sockets) == 1 and made[OWNER_FILE] <= made[sockets[0]]
    assert _pymp(tmp_path) == []  # removed by multiprocessing's exit handler
