"""Ops that fail on purpose, for the fault tests. They run in real worker processes.

A tile is singled out by a marker: a pixel equal to MARKER at the image's
centre of that tile. Tests write the marker into the input image.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

import tilewise
from tilewise.errors import OutputError

MARKER = 7  # a value the fault tests put at one pixel of the target tile


def _marked(image: np.ndarray[Any, Any], marker: int) -> bool:
    return bool((image == marker).any())


@tilewise.op(halo=0)
def raise_on_marker(
    image: np.ndarray[Any, Any], marker: int = MARKER, fixed: str = ""
) -> np.ndarray[Any, Any]:
    """Raise ValueError on the marked tile, unless the file ``fixed`` exists."""
    if _marked(image, marker) and not (fixed and Path(fixed).exists()):
        raise ValueError("bad pixel found")
    return image.copy()


@tilewise.op(halo=0)
def disk_full_on_marker(
    image: np.ndarray[Any, Any], marker: int = MARKER, fixed: str = ""
) -> np.ndarray[Any, Any]:
    """Fail the marked tile as a write to a full disk does, unless the file ``fixed`` exists."""
    if _marked(image, marker) and not (fixed and Path(fixed).exists()):
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/disk/tile")
        raise OutputError(f"{full.filename}: cannot write: {full.strerror}") from full
    return image.copy()


@tilewise.op(halo=0)
def crash_on_marker(
    image: np.ndarray[Any, Any], how: str = "abort", marker: int = MARKER, once: str = ""
) -> np.ndarray[Any, Any]:
    """Die on the marked tile (abort, segv, kill, exit); with ``once=PATH`` only once."""
    if _marked(image, marker):
        if once:
            flag = Path(once)
            if flag.exists():
                return image.copy()
            flag.write_text("crashed")
        if how == "abort":
            os.abort()
        elif how == "segv":
            ctypes.string_at(0)
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "exit":
            os._exit(17)
    return image.copy()


@tilewise.op(halo=0)
def hang_on_marker(image: np.ndarray[Any, Any], marker: int = MARKER) -> np.ndarray[Any, Any]:
    """Sleep for an hour on the marked tile."""
    if _marked(image, marker):
        time.sleep(3600)
    return image.copy()


@tilewise.op(halo=0)
def hog_on_marker(
    image: np.ndarray[Any, Any], gib: float = 4.0, marker: int = MARKER
) -> np.ndarray[Any, Any]:
    """Allocate (and touch) ``gib`` GiB on the marked tile."""
    if _marked(image, marker):
        block = np.ones(int(gib * 2**30), dtype=np.uint8)
        return image.copy() + block[:1]
    return image.copy()


_LEAK: list[bytes] = []


@tilewise.op(halo=0)
def leak(image: np.ndarray[Any, Any], mib: int = 20) -> np.ndarray[Any, Any]:
    """Leak ``mib`` MiB per call (held in a module-level list)."""
    _LEAK.append(os.urandom(mib * 2**20))
    return image.copy()


@tilewise.op(halo=0)
def slow(image: np.ndarray[Any, Any], seconds: float = 0.05) -> np.ndarray[Any, Any]:
    """Sleep a little per tile (to interrupt runs part-way)."""
    time.sleep(seconds)
    return image.copy()


@tilewise.op(halo=0)
def gate(image: np.ndarray[Any, Any], path: str = "", limit: float = 120.0) -> np.ndarray[Any, Any]:
    """Wait until the file ``path`` exists (at most ``limit`` seconds): holds a run mid-way."""
    deadline = time.monotonic() + limit
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return image.copy()


@tilewise.op(halo=0)
def return_lock(image: np.ndarray[Any, Any]) -> Any:
    """Return something that is not an array and cannot be pickled."""
    import threading

    return threading.Lock()
