"""A signal that comes once the output is final: the run is done, and says so.

The real command runs with its journal's removal (the step right after the output
is moved to its final name) wrapped so that it first sends itself the signals
named in ``SIGNALS``: the moment is exact, without sleeping for a race.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tilewise.errors import Interrupted, OutputExistsError, ResumeError
from tilewise.runner.journal import Journal, journal_path

_SIGNALS_AFTER_FINAL = """
import os, signal, sys
from tilewise.runner.journal import Journal
remove = Journal.remove
def signal_then_remove(self):
    for name in os.environ["SIGNALS"].split(","):
        os.kill(os.getpid(), signal.Signals[name])
    return remove(self)
Journal.remove = signal_then_remove
from tilewise.cli.main import main
sys.argv = ["tilewise", *sys.argv[1:]]
main()
"""


def _command(*args: str, signals: str = "") -> subprocess.CompletedProcess[str]:
    script = ["-c", _SIGNALS_AFTER_FINAL] if signals else ["-m", "tilewise.cli.main"]
    return subprocess.run(
        [sys.executable, *script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SIGNALS": signals},
    )


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, np.ndarray]:
    picture = make_image((128, 128), "uint8")
    return write_image(tmp_path / "in.tif", picture, tile=(64, 64)), picture


def _run_args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(src), str(out), "--op", "invert", "--tile", "64", "--workers", "1", *extra]


@pytest.mark.parametrize(
    ("sig", "name"), [(signal.SIGTERM, "out.tif"), (signal.SIGINT, "out.zarr")]
)
def test_a_signal_after_the_output_is_final_is_held_and_the_run_exits_0(image, tmp_path, sig, name):
    src, picture = image
    out, report = tmp_path / name, tmp_path / "report.json"
    done = _command(*_run_args(src, out, "-q", "--report", str(report)), signals=sig.name)
    assert done.returncode == 0, done.stderr
    assert f"{sig.name} came after {out} was complete" in done.stderr
    assert "--resume" not in done.stderr and "Traceback" not in done.stderr
    np.testing.assert_array_equal(read_image(out), 255 - picture)
    written = json.loads(report.read_text())
    assert written["ok"] is True and written["finalized"] is True
    assert leftovers(tmp_path) == []  # journal, lock and partial output all gone


def test_a_second_signal_stops_at_once_and_resume_finds_the_output_complete(image, tmp_path):
    src, picture = image
    out = tmp_path / "out.zarr"
    stopped = _command(*_run_args(src, out, "-q"), signals="SIGTERM,SIGINT")
    assert stopped.returncode == 130, stopped.stderr
    assert f"Interrupted by SIGINT after {out} was complete; nothing to resume" in stopped.stderr
    assert journal_path(out).exists()  # stopped before the journal was removed
    with pytest.raises(ResumeError, match="this run differs"):  # the journal is another run's
        tilewise.run(src, out, ["invert"], tile=32, workers=1, resume=True)
    resumed = _command(*_run_args(src, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{out} was already complete: nothing left to do" in resumed.stderr
    np.testing.assert_array_equal(read_image(out), 255 - picture)
    assert leftovers(tmp_path) == []


def test_a_signal_after_a_batch_stack_is_final_is_held(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pictures = [make_image((32, 32), "uint8", seed=seed) for seed in range(3)]
    for number, picture in enumerate(pictures):
        write_image(folder / f"{number}.tif", picture)
    stack = tmp_path / "stack.npy"
    args = ["batch", str(folder), "--stack", str(stack), "--op", "invert", "--workers", "1", "-q"]
    done = _command(*args, signals="SIGTERM")
    assert done.returncode == 0, done.stderr
    assert f"SIGTERM came after {stack} was complete" in done.stderr
    np.testing.assert_array_equal(np.load(stack), 255 - np.stack(pictures))
    assert leftovers(tmp_path) == []


def test_in_python_a_held_signal_is_raised_once_the_run_is_done(image, tmp_path, monkeypatch):
    src, picture = image
    out = tmp_path / "out.npy"
    remove = Journal.remove

    def signal_then_remove(journal: Journal) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        remove(journal)

    monkeypatch.setattr(Journal, "remove", signal_then_remove)
    with pytest.raises(Interrupted) as stopped:
        tilewise.run(src, out, ["invert"], tile=64, workers=1)
    assert stopped.value.complete and stopped.value.signum == signal.SIGINT
    report = stopped.value.report
    assert isinstance(report, tilewise.RunReport) and report.ok and report.finalized
    np.testing.assert_array_equal(np.load(out), 255 - picture)
    assert leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_of_a_final_output_without_its_journal_says_there_is_nothing_to_resume(
    image, tmp_path
):
    src, _ = image
    out = tmp_path / "out.npy"
    assert tilewise.run(src, out, ["invert"], tile=64, workers=1).ok
    with pytest.raises(OutputExistsError, match="no run of it is unfinished"):
        tilewise.run(src, out, ["invert"], tile=64, workers=1, resume=True)
