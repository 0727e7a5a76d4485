"""Code that runs inside worker processes: set-up, and the wrapper around every task."""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tilewise._host import worker_name
from tilewise.errors import StorageUnavailableError

__all__ = ["TaskError", "TaskResult", "environment_failure", "initialize", "run_task", "serve"]

_MEMORY_MARKERS = ("Insufficient memory", "Failed to allocate", "Unable to allocate", "OutOfMemory")
#: Write errors that say the output's storage is full: no space, over quota, over the
#: file-size limit.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
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


def environment_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failure of the environment, not of the task that met it.

    True for object storage that still fails after the storage layer's own
    retries (:class:`~tilewise.errors.StorageUnavailableError`) and for a write
    that found the disk full, over quota or over the file-size limit (``ENOSPC``,
    ``EDQUOT``, ``EFBIG``), also when tilewise wrapped it in an error naming the
    file (its ``__cause__`` or ``__context__``). Every other task would meet the same.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageUnavailableError):
            return True
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return False


def _kind(err: BaseException) -> str:
    if _is_memory_error(err):
        return "memory"
    return "environment" if environment_failure(err) else "exception"


def run_task(fn: Callable[[Any], Any], payload: Any) -> TaskResult | TaskError:
    """Run ``fn(payload)``; never raise: an exception comes back as a :class:`TaskError`.

    Its ``kind`` is ``"memory"``, ``"environment"`` (see :func:`environment_failure`)
    or ``"exception"``.
    """
    start = time.perf_counter()
    try:
        value = fn(payload)
    except Exception as err:  # every failure is reported, none kills the worker
        kind = _kind(err)
        message = f"{type(err).__name__}: {err}"
        if kind == "memory":
            message = f"exceeded the memory limit ({message})"
        return TaskError(
            kind, message, traceback.format_exc(), worker_name(), time.perf_counter() - start
        )
    return TaskResult(value, worker_name(), time.perf_counter() - start)


def _take_environment(environ: Mapping[str, str]) -> None:
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    os.environ.update(environ)


def serve(
    conn: Connection, memory_limit: int | None, environ: Mapping[str, str] | None = None
) -> None:
    """A worker's life: set up, then answer each task that comes down ``conn``.

    ``environ``, when given, becomes the worker's environment before anything else
    (the main process's as it was when the worker started, for workers forked from a
    fork server that started earlier).

    Each message is ``(fn, payload)``; each answer a :class:`TaskResult` or
    :class:`TaskError`, in order. ``None``, or the main process closing its end,
    ends the worker. Once set up, the worker first sends an empty message: it is
    ready, and the clock of its first task's timeout starts then, not while a
    freshly spawned interpreter is still importing.
    """
    if environ is not None:
        _take_environment(environ)
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
