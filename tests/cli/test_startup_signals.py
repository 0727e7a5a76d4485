"""A signal during the command's start-up ends it with one line and 128 + the signal number."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.conftest import make_image, write_image
from tests.runner.helpers import start_cli, wait_session_empty


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_command_starts_up_is_one_line(tmp_path, sig, code):
    src = write_image(tmp_path / "in.tif", make_image((64, 64)))
    proc = start_cli("run", str(src), str(tmp_path / "out.zarr"), "--op", "invert", "-q")
    # The fork server starts first thing, before click and the commands are imported:
    # the signal is sent as soon as it appears, while the command is still loading.
    deadline = time.monotonic() + 30
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert f"Interrupted by {sig.name}" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert wait_session_empty(proc.pid) == []
