"""Helpers for the fault tests: marked images, process-tree checks, CLI subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from tests.conftest import make_image, write_image
from tests.faults import MARKER

SHAPE = (256, 256)
TILE = 64  # 16 tiles; tile 7 is rows 64:128, cols 192:256
TARGET = 7


def marked_image(
    shape: tuple[int, int] = SHAPE, target_pixel: tuple[int, int] | None = (96, 224), seed: int = 0
) -> np.ndarray[Any, Any]:
    """A uint8 image with no MARKER pixel except one inside tile 7 (with the default tiling)."""
    image = make_image(shape, "uint8", seed=seed)
    image[image == MARKER] = MARKER + 1
    if target_pixel is not None:
        image[target_pixel] = MARKER
    return image


def marked_file(tmp_path: Path, name: str = "in.tif", **kwargs: Any) -> tuple[Path, np.ndarray]:
    image = marked_image(**kwargs)
    return write_image(tmp_path / name, image, tile=(64, 64)), image


def worker_children() -> list[psutil.Process]:
    """Live child processes, other than multiprocessing's fork server and resource tracker."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            if "multiprocessing." in cmd or child.status() == psutil.STATUS_ZOMBIE:
                continue
            out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


def wait_no_workers(timeout: float = 15.0) -> list[psutil.Process]:
    """Wait for worker processes to go; return the ones still alive."""
    deadline = time.monotonic() + timeout
    alive = worker_children()
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = worker_children()
    return alive


def session_processes(sid: int) -> list[psutil.Process]:
    """Processes still alive in session ``sid`` (a CLI started with start_new_session=True)."""
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return alive


def wait_session_empty(sid: int, timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = session_processes(sid)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = session_processes(sid)
    return alive


def start_cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start the real ``tilewise`` entry point in its own session."""
    return subprocess.Popen(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def journal_lines(output: Path) -> int:
    journal = output.with_name(f".{output.name}.journal")
    try:
        return max(0, len(journal.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def wait_for_journal(
    output: Path, count: int, proc: subprocess.Popen[str], timeout: float = 120.0
) -> int:
    """Wait until ``count`` tiles are journaled (or the process ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = journal_lines(output)
        if done >= count:
            return done
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach {count} journaled tiles: {proc.poll()=}")
