"""Crash isolation inside Dask workers: each task runs in a child process the worker owns.

A Dask worker that segfaults in an op dies with everything it holds, and Dask
reruns its tasks elsewhere: a poison tile then kills ``allowed-failures + 1``
workers before Dask gives up (RELIABILITY.md, row 12). Here the Dask task only
hands the tile to a child process owned by the Dask worker process — a
:class:`~tilewise.executors._lane.Lane`, as in the local executor; one per
task running at once (at most one per Dask thread), kept for the next task,
forgotten after a fork — and waits. A child that crashes, hangs past the timeout or runs out of
memory costs that child only: the failure comes back as an ordinary *result*
(a :class:`~tilewise.executors._worker.TaskError`), so the Dask task succeeds
and the Dask worker lives on.

This module runs inside Dask worker processes; it imports nothing of Dask at
module level.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tilewise._host import worker_name
from tilewise.executors._lane import Lane, encode, shut_down
from tilewise.executors._worker import TaskError, TaskResult
from tilewise.executors.forkserver import preload
from tilewise.executors.local import describe_exit

__all__ = ["Isolation", "retire_idle_pools", "run_encoded", "run_isolated", "warm_up"]


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
    stall
        Without a ``timeout``: the run's stall threshold and give-up time, in
        seconds, when its main process sent the task (see
        :class:`~tilewise.executors.StallRule`); a task still running at the
        give-up time is stopped as stalled, its child killed and replaced.
    """

    timeout: float | None = None
    memory_limit: int | None = None
    max_tasks_per_worker: int | None = None
    stall: tuple[float, float] | None = None

    def __reduce__(self) -> tuple[type[Isolation], tuple[Any, ...]]:
        # by its fields: every task carries one, and a slotted dataclass's default is slow
        return (Isolation, (self.timeout, self.memory_limit, self.max_tasks_per_worker, self.stall))


@dataclass(slots=True)
class _Pool:
    """The child processes of one setting in one Dask worker: idle ones, and how many are busy."""

    isolation: Isolation
    lanes: list[Lane] = field(default_factory=list)
    idle: list[Lane] = field(default_factory=list)


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
    """Threads of the Dask worker running this code (tasks that may run at once)."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):  # not inside a Dask worker (tests, in-process runs)
        return 1


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


def _new_lane(isolation: Isolation) -> Lane:
    _allow_children()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload("dask"))
    _start_fork_server()
    return Lane(context, isolation.memory_limit, isolation.max_tasks_per_worker or 0)


def _pool(isolation: Isolation) -> _Pool:
    """The pool of this Dask worker for ``isolation``; call with ``_lock`` held."""
    # limits are per call, not properties of the process: one pool serves every limit
    key = (replace(isolation, timeout=None, stall=None), _where())
    return _pools.setdefault(key, _Pool(key[0]))


def _acquire(isolation: Isolation) -> tuple[_Pool, Lane]:
    """An idle child process for ``isolation`` (a new one if none is idle)."""
    with _lock:
        pool = _pool(isolation)
        if pool.idle:
            return pool, pool.idle.pop()
    lane = _new_lane(isolation)
    with _lock:
        pool.lanes.append(lane)
    return pool, lane


def _release(pool: _Pool, lane: Lane) -> None:
    with _lock:
        pool.idle.append(lane)


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
    try:
        data = encode(fn, payload)
    except Exception as err:  # an unpicklable function or payload
        message = f"the task cannot be sent to a process: {type(err).__name__}: {err}"
        return _failure("exception", message, start, traceback.format_exc())
    return _run(data, isolation, start)


def run_encoded(data: bytes, isolation: Isolation) -> TaskResult | TaskError:
    """:func:`run_isolated` of a task already encoded (``encode(fn, payload)``); never raise.

    The main process encodes each task once and the Dask worker hands the bytes
    on as they are: its event loop neither unpickles the task nor pickles it again.
    """
    return _run(data, isolation, time.perf_counter())


def _run(data: bytes, isolation: Isolation, start: float) -> TaskResult | TaskError:
    """Run the encoded task ``data`` in a child process of this Dask worker; never raise."""
    pool, lane = _acquire(isolation)
    stall = isolation.stall if isolation.timeout is None else None
    try:
        status, answer = lane.call(data, isolation.timeout if stall is None else stall[1])
    except Exception as err:  # no child process could be started or reached
        lane.take_back()
        lane.kill()
        message = f"the tile's process could not run: {type(err).__name__}: {err}"
        return _failure("crash", message, start, traceback.format_exc())
    finally:
        _release(pool, lane)
    if status == "timeout" and stall is not None:
        stalled, give_up = stall
        return _failure(
            "timeout",
            f"stalled: ran {time.perf_counter() - start:.0f} s without an answer, over "
            f"{give_up:.0f} s ({give_up / stalled:g} x the stall threshold of {stalled:.0f} s); "
            "its process was replaced (the Dask worker was not affected; set --timeout to "
            "choose the limit yourself)",
            start,
        )
    if status == "timeout":
        return _failure(
            "timeout",
            f"timed out after {isolation.timeout:g} s; its process was replaced "
            "(the Dask worker was not affected)",
            start,
        )
    if status == "died":
        kind, cause = describe_exit(answer)
        return _failure(kind.value, cause, start, f"child process {lane.last_pid}")
    if isinstance(answer, TaskError):
        return TaskError(answer.kind, answer.message, answer.traceback, _where(), answer.seconds)
    return TaskResult(answer.value, _where(), answer.seconds)


def warm_up(isolation: Isolation) -> int:
    """Start this Dask worker's tile processes now, up to one per thread; return how many.

    Returns at once: the processes get ready in the background, and a tile
    sent to one that is not ready yet waits for it (its timeout's clock starts
    when the process is ready). Processes already there are left alone, busy
    or idle, so a warm-up never holds up a tile.
    """
    started = 0
    while True:
        with _lock:
            pool = _pool(isolation)
            if len(pool.lanes) >= _threads():
                return started
        lane = _new_lane(isolation)
        lane.start()
        with _lock:
            pool.lanes.append(lane)
            pool.idle.append(lane)
        started += 1


def retire_idle_pools() -> int:
    """Stop this process's idle child processes; return how many were stopped.

    Called on every Dask worker when a run ends, so no idle children are left
    behind on a shared cluster. Children busy with a task (another run on the
    same cluster) are left alone.
    """
    with _lock:
        stopping = [lane for pool in _pools.values() for lane in pool.idle]
        for pool in _pools.values():
            pool.lanes = [lane for lane in pool.lanes if lane not in pool.idle]
            pool.idle.clear()
    shut_down(stopping)
    return len(stopping)


def _stop_all() -> None:
    """Stop every child of this process (it is exiting)."""
    with _lock:
        stopping = [lane for pool in _pools.values() for lane in pool.lanes]
        _pools.clear()
    shut_down(stopping)


# Our children are not daemonic: multiprocessing joins them when this process
# exits, which would hang a Dask worker's exit until its nanny kills it. A
# multiprocessing finalizer runs before that join, in the main process (at exit) and
# in a worker started by multiprocessing (whose exit skips atexit).
multiprocessing.util.Finalize(None, _stop_all, exitpriority=10)
