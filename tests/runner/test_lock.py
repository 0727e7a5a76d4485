"""One run per output: a second run is refused while the first holds the output's lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tests.runner.helpers import start_cli, wait_for_journal
from tilewise._procs import start_time
from tilewise.errors import OutputError
from tilewise.executors._pymp import OWNER_FILE
from tilewise.runner.lock import holding, lock_path

SLOW = ["--op", "tests.faults.slow:seconds=0.05", "--op", "invert"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture
def slow_run(tmp_path):
    image = make_image((256, 256), "uint8")
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    out = tmp_path / "out.zarr"
    args = ["run", str(src), str(out), *SLOW, "--tile", "64", "--workers", "1", "-q"]
    return args, out, 255 - image


def test_a_second_run_is_refused_while_the_first_holds_the_output(tmp_path, slow_run):
    args, out, expected = slow_run
    opened = tmp_path / "gate-open"
    gated = [*args[:3], "--op", f"tests.faults.gate:path={opened}", *args[3:]]
    first = start_cli(*gated)  # holds its first tile until the gate opens
    try:
        while first.poll() is None and not (lock_path(out).exists() and lock_path(out).read_text()):
            time.sleep(0.02)
        for flag in ("--resume", "--overwrite"):
            second = cli(*args, flag)
            assert second.returncode == 2, second.stderr
            message = second.stderr.strip()
            assert message.count("\n") == 0, message
            assert f"pid {first.pid} on {socket.gethostname()}" in message
            assert "another tilewise run" in message
        opened.touch()
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    np.testing.assert_array_equal(read_image(out), expected)
    assert leftovers(tmp_path) == []


def test_the_lock_and_temp_folder_of_a_killed_run_are_taken_over_and_removed(tmp_path, slow_run):
    args, out, expected = slow_run
    temp = tmp_path / "tmp"  # multiprocessing's pymp-* folder of the killed run lands here
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    first = start_cli(*args, env=env)
    wait_for_journal(out, 1, first)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)  # also closes its pipes
    assert json.loads(lock_path(out).read_text())["pid"] == first.pid
    (left,) = temp.glob("pymp-*")
    assert json.loads((left / OWNER_FILE).read_text())["pid"] == first.pid
    resumed = subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args, "--resume"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(read_image(out), expected)
    assert leftovers(tmp_path) == []
    assert list(temp.iterdir()) == []


def _record(path, **fields):
    lock_path(path).write_text(json.dumps(fields))


def test_a_lock_file_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    out = tmp_path / "out.tif"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    _record(out, pid=int(gone.stdout), host=socket.gethostname(), start="1")
    with holding(out) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_a_recorded_live_holder_refuses_even_where_flock_does_not_exclude(tmp_path):
    out = tmp_path / "out.tif"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _record(out, pid=sleeper.pid, host=socket.gethostname(), start=start_time(sleeper.pid))
        with pytest.raises(OutputError, match=f"another tilewise run \\(pid {sleeper.pid} on"):
            holding(out).__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert lock_path(out).exists()  # the other run's lock file is left alone


def test_a_lock_file_from_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "out.zarr"
    _record(out, pid=4242, host="elsewhere.example")
    with pytest.raises(OutputError, match=r"run on another host \(pid 4242 on elsewhere") as err:
        holding(out).__enter__()
    assert f"delete {lock_path(out)}" in str(err.value)
    lock_path(out).unlink()
    with holding(out):
        pass


def test_a_batch_is_refused_while_another_process_holds_its_output(tmp_path):
    (tmp_path / "in").mkdir()
    src = write_image(tmp_path / "in" / "a.npy", make_image((16, 16)))
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tilewise.runner.lock import holding\n"
         "with holding(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"another tilewise run \\(pid {holder.pid} on"):
            tilewise.batch(src.parent, out=out, ops=["invert"], workers=1)
    finally:
        holder.kill()
        holder.communicate()  # also closes its pipe
    assert not out.exists()
    assert tilewise.batch(src.parent, out=out, ops=["invert"], workers=1).ok
