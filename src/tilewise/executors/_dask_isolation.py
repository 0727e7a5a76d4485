"""Crash isolation inside Dask workers: each task runs in a child process the worker owns.

A Dask worker that segfaults in an op dies with everything it holds, and Dask
reruns its tasks elsewhere: a poison tile then kills ``allowed-failures + 1``
workers before Dask gives up (RELIABILITY.md, row 12). Here the Dask task only
hands the tile to a small pebble ``ProcessPool`` owned by the Dask worker
process (one child per worker thread, created on first use, recreated after a
fork), and waits. A child that crashes, hangs past the timeout or runs out of
memory costs that child only: the failure comes back as an ordinary *result*
(a :class:`~tilewise.executors._worker.TaskError`), so the Dask task succeeds
and the Dask worker lives on.

This module runs inside Dask worker processes; it imports nothing of Dask at
module level.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import pebble

from tilewise.executors._worker import TaskError, TaskResult, initialize, run_task, worker_name
from tilewise.executors.local import describe_exit

__all__ = ["Isolation", "retire_idle_pools", "run_isolated", "warm_up"]

log = logging.getLogger(__name__)

_PRELOAD = [
    "tilewise.executors._native_threads",
    "tilewise.executors._worker",
    "tilewise.runner.work",
    "numpy",
    "cv2",
    "tifffile",
    "zarr",
]


_MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"


@dataclass(frozen=True, slots=True)
class Isolation:
    """How the child processes of a Dask worker run each task.

    Parameters
    ----------
    timeout
        Seconds one task may run before its child is killed and replaced.
    memory_limit
        Bytes one child may allocate beyond its start-up size.
    max_tasks_per_worker
        Replace each child after this many tasks.
    """

    timeout: float | None = None
    memory_limit: int | None = None
    max_tasks_per_worker: int | None = None


@dataclass(slots=True)
class _Pool:
    """A pool of child processes, the process that owns it, and how many tasks use it now."""

    pool: pebble.ProcessPool
    pid: int
    users: int = 0


_lock = threading.Lock()
# keyed by the settings and the Dask worker (several in-process workers share one process)
_pools: dict[tuple[Isolation, str], _Pool] = {}


def _forget_after_fork() -> None:
    """In a forked child, the parent's pools are not ours: start afresh."""
    global _lock
    _lock = threading.Lock()
    _pools.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _threads() -> int:
    """Threads of the Dask worker running this code (one child process each)."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):  # not inside a Dask worker (tests, in-process runs)
        return os.cpu_count() or 1


def _where() -> str:
    """The Dask worker's address, or ``host:pid`` outside a Dask worker."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return worker_name()


def _allow_children() -> None:
    """Let this process start child processes even if it was started as a daemon.

    A Dask nanny starts its worker as a daemonic process (the default of
    ``distributed.worker.daemon``), and multiprocessing refuses to start
    children from one. The flag only guards that check inside this process:
    the nanny still stops the worker; our children are stopped when it exits
    (see the finalizer below), or get SIGKILL when it is killed (their parent,
    the fork server, exits then, and ``initialize`` set their parent-death signal).
    """
    process = multiprocessing.current_process()
    if process.daemon:
        try:
            process.daemon = False
        except AssertionError:  # pragma: no cover - a process object that already started
            process._config["daemon"] = False  # type: ignore[attr-defined]


def _start_fork_server() -> None:
    """Start this process's fork server (the parent of our children) with malloc defaults.

    A Dask nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` for its worker so freed
    memory goes back to the OS at once. Inherited by tile processes it makes
    glibc unmap and fault in again the buffers of every tile: 2.4x the page
    faults and ~15% more CPU per 1024-px tile, measured. Tile processes are
    bounded by ``memory_limit`` and ``max_tasks_per_worker`` instead, as in the
    local executor, so they start with glibc's defaults.
    """
    from multiprocessing import forkserver

    saved = os.environ.pop(_MALLOC_TRIM, None)
    try:
        forkserver.ensure_running()
    finally:
        if saved is not None:
            os.environ[_MALLOC_TRIM] = saved


def _new_pool(isolation: Isolation) -> pebble.ProcessPool:
    _allow_children()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    _start_fork_server()
    return pebble.ProcessPool(
        max_workers=_threads(),
        max_tasks=isolation.max_tasks_per_worker or 0,
        initializer=initialize,
        initargs=(isolation.memory_limit,),
        context=context,
    )


def _acquire(isolation: Isolation) -> _Pool:
    key = (isolation, _where())
    with _lock:
        entry = _pools.get(key)
        if entry is None or entry.pid != os.getpid() or not entry.pool.active:
            entry = _pools[key] = _Pool(_new_pool(isolation), os.getpid())
        entry.users += 1
        return entry


def _release(entry: _Pool) -> None:
    with _lock:
        entry.users -= 1


def _failure(kind: str, message: str, start: float, detail: str = "") -> TaskError:
    return TaskError(kind, message, detail, _where(), time.perf_counter() - start)


def run_isolated(
    fn: Callable[[Any], Any], payload: Any, isolation: Isolation
) -> TaskResult | TaskError:
    """Run ``fn(payload)`` in a child process of this Dask worker; never raise.

    Returns
    -------
    TaskResult or TaskError
        The value, or the failure (exception, crash with its signal, timeout,
        memory), with ``worker`` set to the Dask worker's address.
    """
    start = time.perf_counter()
    entry = _acquire(isolation)
    try:
        future = entry.pool.schedule(run_task, args=(fn, payload), timeout=isolation.timeout)
        try:
            result = future.result()
        except FutureTimeout:
            return _failure(
                "timeout",
                f"timed out after {isolation.timeout:g} s; its process was replaced "
                "(the Dask worker was not affected)",
                start,
            )
        except pebble.ProcessExpired as err:
            kind, cause = describe_exit(err.exitcode)
            return _failure(kind.value, cause, start, f"child process {err.pid}")
        except Exception as err:  # pickling errors and the like, raised by the pool
            message = f"{type(err).__name__}: {err}"
            return _failure("exception", message, start, traceback.format_exc())
    finally:
        _release(entry)
    if isinstance(result, TaskError):
        return TaskError(result.kind, result.message, result.traceback, _where(), result.seconds)
    return TaskResult(result.value, _where(), result.seconds)


def _noop() -> None:
    """A task that does nothing: proves a child process is up."""


def warm_up(isolation: Isolation) -> None:
    """Start this Dask worker's tile processes now, ahead of the first tile."""
    entry = _acquire(isolation)
    try:
        entry.pool.schedule(_noop).result()
    finally:
        _release(entry)


def retire_idle_pools() -> int:
    """Stop this process's child pools that no task is using; return how many were stopped.

    Called on every Dask worker when a run ends, so no idle children are left
    behind on a shared cluster. A pool still in use (another run on the same
    cluster) is left alone.
    """
    with _lock:
        idle = [key for key, entry in _pools.items() if entry.users == 0]
        stopping = [_pools.pop(key) for key in idle]
    for entry in stopping:
        if entry.pid == os.getpid():
            _stop(entry.pool)
    return len(stopping)


def _stop(pool: pebble.ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    try:
        pool.join(timeout=5)
    except TimeoutError:  # pragma: no cover - pebble kills stragglers itself
        log.warning("child processes of this Dask worker did not stop within 5 s")


def _stop_all() -> None:
    """Stop every pool of this process (it is exiting)."""
    with _lock:
        stopping = [entry for entry in _pools.values() if entry.pid == os.getpid()]
        _pools.clear()
    for entry in stopping:
        _stop(entry.pool)


# pebble's children are not daemonic: multiprocessing joins them when this process
# exits, which would hang a Dask worker's exit until its nanny kills it. A
# multiprocessing finalizer runs before that join, in the main process (at exit) and
# in a worker started by multiprocessing (whose exit skips atexit).
multiprocessing.util.Finalize(None, _stop_all, exitpriority=10)
