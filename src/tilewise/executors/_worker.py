"""Code that runs inside worker processes: set-up, and the wrapper around every task."""

from __future__ import annotations

import ctypes
import resource
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tilewise._host import worker_name

__all__ = ["TaskError", "TaskResult", "initialize", "run_task", "serve"]

_MEMORY_MARKERS = ("Insufficient memory", "Failed to allocate", "Unable to allocate", "OutOfMemory")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A task's value, with who ran it and for how long."""

    value: Any
    worker: str
    seconds: float

    def __reduce__(self) -> tuple[type[TaskResult], tuple[Any, str, float]]:
        # by its fields: a run answers with one per tile, and a slotted dataclass's
        # default pickling is ~10 times slower
        return (TaskResult, (self.value, self.worker, self.seconds))


@dataclass(frozen=True, slots=True)
class TaskError:
    """An exception raised by a task, flattened to text so it always pickles."""

    kind: str
    message: str
    traceback: str
    worker: str
    seconds: float

    def __reduce__(self) -> tuple[type[TaskError], tuple[str, str, str, str, float]]:
        return (TaskError, (self.kind, self.message, self.traceback, self.worker, self.seconds))


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def initialize(memory_limit: int | None) -> None:
    """Prepare a fresh worker process.

    Ignores SIGINT (the main process decides about interruptions), dies with
    its parent (no orphans if the main process is killed), keeps native
    libraries to one thread (OpenCV here; OpenBLAS and OpenMP through
    :mod:`~tilewise.executors._native_threads`, for those not loaded yet), and
    caps the address space at start-up size plus ``memory_limit`` so a runaway
    allocation fails with MemoryError here instead of taking the machine down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Imported here, not at the top: this module is imported by the main process too,
    # whose environment is the user's.
    from tilewise.executors._native_threads import limit_native_threads

    limit_native_threads()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: rely on pipe EOF instead
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a core dependency
        pass
    if memory_limit:
        limit = _vm_size() + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _is_memory_error(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or any(m in str(err) for m in _MEMORY_MARKERS)


def run_task(fn: Callable[[Any], Any], payload: Any) -> TaskResult | TaskError:
    """Run ``fn(payload)``; never raise: an exception comes back as a :class:`TaskError`."""
    start = time.perf_counter()
    try:
        value = fn(payload)
    except Exception as err:  # every failure is reported, none kills the worker
        kind = "memory" if _is_memory_error(err) else "exception"
        message = f"{type(err).__name__}: {err}"
        if kind == "memory":
            message = f"exceeded the memory limit ({message})"
        return TaskError(
            kind, message, traceback.format_exc(), worker_name(), time.perf_counter() - start
        )
    return TaskResult(value, worker_name(), time.perf_counter() - start)


def serve(conn: Connection, memory_limit: int | None) -> None:
    """A worker's life: set up, then answer each task that comes down ``conn``.

    Each message is ``(fn, payload)``; each answer a :class:`TaskResult` or
    :class:`TaskError`, in order. ``None``, or the main process closing its end,
    ends the worker. Once set up, the worker first sends an empty message: it is
    ready, and the clock of its first task's timeout starts then, not while a
    freshly spawned interpreter is still importing.
    """
    initialize(memory_limit)
    try:
        conn.send_bytes(b"")
    except OSError:
        return  # the main process is gone
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the main process is gone
        except Exception as err:  # the task does not load here, e.g. a function of __main__
            answer: TaskResult | TaskError = TaskError(
                "exception",
                f"the task could not be loaded in the worker: {type(err).__name__}: {err}",
                traceback.format_exc(),
                worker_name(),
                0.0,
            )
        else:
            if message is None:
                return
            fn, payload = message
            answer = run_task(fn, payload)
        try:
            conn.send(answer)
        except OSError:
            return  # the main process is gone
        except Exception as err:  # the value does not pickle; nothing was written yet
            unsendable = TaskError(
                "exception",
                f"the task's result cannot be sent back: {type(err).__name__}: {err}",
                traceback.format_exc(),
                worker_name(),
                answer.seconds,
            )
            try:
                conn.send(unsendable)
            except OSError:
                return
