"""The local executor: supervised worker processes on this machine.

Built on pebble's ``ProcessPool`` (one single-process pool per worker), which — unlike
``multiprocessing.Pool`` and ``ProcessPoolExecutor`` — loses only the task of a
worker that dies and replaces the worker, and kills and replaces a worker whose
task times out.
On top of that this module adds bounded in-flight work, retries, memory caps,
worker recycling and causes a person can read ("worker died (SIGSEGV)").
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

import pebble
from pebble.common import CONSTS as PEBBLE_CONSTS

from tilewise.errors import ExecutorError, UsageError
from tilewise.executors._worker import TaskError, initialize, run_task
from tilewise.executors.base import (
    Done,
    Executor,
    FailureKind,
    Outcome,
    Supervision,
    Task,
    _Attempts,
)
from tilewise.executors.forkserver import start_forkserver

__all__ = ["LocalExecutor", "describe_exit"]

log = logging.getLogger(__name__)


#: How often pebble's pool threads look at their workers (a dead worker, a timed-out task,
#: a stop). pebble's default, 0.1 s, is added whole to every stop of a pool and to noticing
#: a dead worker; its author suggests lowering the constant for faster response (pebble
#: issue #65). The check is a few microseconds per worker.
POLL_SECONDS = 0.01


def describe_exit(exitcode: int | None) -> tuple[FailureKind, str]:
    """Turn a dead worker's exit code into a failure kind and a readable cause.

    >>> describe_exit(-11)
    (<FailureKind.CRASH: 'crash'>, 'worker died (SIGSEGV: segmentation fault in native code)')
    """
    if exitcode is None:
        return FailureKind.CRASH, "worker died (no exit code)"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return FailureKind.CRASH, f"worker died (signal {-exitcode})"
        if sig is signal.SIGKILL:
            return FailureKind.MEMORY, (
                "worker was killed (SIGKILL); the likely cause is running out of memory "
                "(the kernel's OOM killer) — try smaller tiles, fewer workers or --memory-limit"
            )
        detail = {
            signal.SIGSEGV: "segmentation fault in native code",
            signal.SIGABRT: "abort in native code",
            signal.SIGBUS: "bus error",
            signal.SIGFPE: "arithmetic error in native code",
            signal.SIGILL: "illegal instruction",
        }.get(sig)
        name = f"{sig.name}: {detail}" if detail else sig.name
        return FailureKind.CRASH, f"worker died ({name})"
    return FailureKind.CRASH, f"worker exited with code {exitcode}"


class _Queue(Protocol):
    """Where the next task for a worker slot comes from."""

    def take(self, slot: int) -> _Attempts | None: ...

    def retry(self, slot: int, attempts: _Attempts) -> None: ...


class _Fifo:
    """Tasks in the order given, pulled lazily; retries first."""

    def __init__(self, tasks: Iterator[Task]) -> None:
        self._tasks = tasks
        self._retries: deque[_Attempts] = deque()

    def take(self, slot: int) -> _Attempts | None:
        if self._retries:
            return self._retries.popleft()
        task = next(self._tasks, None)
        return None if task is None else _Attempts(task)

    def retry(self, slot: int, attempts: _Attempts) -> None:
        self._retries.append(attempts)


class _Bands:
    """One contiguous band of tasks per slot; an idle slot takes the far half of the largest."""

    def __init__(self, tasks: list[Task], slots: int) -> None:
        size = len(tasks)
        self._bands = [
            deque(_Attempts(t) for t in tasks[k * size // slots : (k + 1) * size // slots])
            for k in range(slots)
        ]

    def take(self, slot: int) -> _Attempts | None:
        band = self._bands[slot]
        if not band:
            donor = max(self._bands, key=len)
            half = len(donor) // 2 if len(donor) > 1 else len(donor)
            stolen = [donor.pop() for _ in range(half)]
            band.extend(reversed(stolen))
        return band.popleft() if band else None

    def retry(self, slot: int, attempts: _Attempts) -> None:
        self._bands[slot].appendleft(attempts)


def _warm_up() -> None:
    """A no-op task: gets a worker process started."""


class LocalExecutor(Executor):
    """Supervised worker processes on this machine.

    Each worker is its own single-process pebble pool (a *lane*), so tilewise
    decides which worker gets which task: neighbouring tiles can be kept on
    the same worker (see ``run(..., locality=True)``), and a crash or timeout
    in one lane never touches another.

    Parameters
    ----------
    workers
        Number of worker processes (default: one per core).
    supervision
        Retries, timeout, memory limit and recycling.
    max_in_flight
        Tasks handed out at once (default ``2 * workers``): keeps memory flat.
    start_method
        ``"forkserver"`` (default: safe with threads in the main process) or
        ``"fork"`` (needed for ops defined in ``__main__``, e.g. a notebook).
    preload
        Modules the fork server imports for the workers besides
        :data:`~tilewise.executors.forkserver.BASE_PRELOAD` (usually the module
        that defines the task function), so no worker imports them itself.
    """

    name = "local"

    def __init__(
        self,
        workers: int | None = None,
        supervision: Supervision | None = None,
        *,
        max_in_flight: int | None = None,
        start_method: str = "forkserver",
        preload: Sequence[str] = (),
    ) -> None:
        workers = workers or os.cpu_count() or 1
        if workers < 1:
            raise UsageError(f"workers must be at least 1, got {workers}")
        super().__init__(workers, supervision)
        self.max_in_flight = max(1, max_in_flight or 2 * workers)
        if start_method not in ("fork", "forkserver", "spawn"):
            raise UsageError(f"start method must be fork, forkserver or spawn, got {start_method}")
        self.start_method = start_method
        self.preload = tuple(preload)
        self._lanes: list[pebble.ProcessPool] = []

    def _ensure_lanes(self) -> list[pebble.ProcessPool]:
        if not self._lanes:
            PEBBLE_CONSTS.sleep_unit = min(PEBBLE_CONSTS.sleep_unit, POLL_SECONDS)
            context = multiprocessing.get_context(self.start_method)
            if self.start_method == "forkserver":
                start_forkserver(self.preload)
            self._lanes = [
                pebble.ProcessPool(
                    max_workers=1,
                    max_tasks=self.supervision.max_tasks_per_worker or 0,
                    initializer=initialize,
                    initargs=(self.supervision.memory_limit,),
                    context=context,
                )
                for _ in range(self.workers)
            ]
            for lane in self._lanes:  # every worker starts now, not when its first task comes
                lane.schedule(_warm_up)
        return self._lanes

    def start(self) -> None:
        """Get workers starting without waiting for them.

        With the fork server, start the server (it imports in the background;
        the workers fork from it when the first task comes). Otherwise start
        the workers now (each runs a no-op task).
        """
        if self.start_method == "forkserver":
            start_forkserver(self.preload)
        else:
            self._ensure_lanes()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "start_method": self.start_method,
            "max_in_flight": self.max_in_flight,
            "retries": self.supervision.retries,
            "timeout": self.supervision.timeout,
            "memory_limit": self.supervision.memory_limit,
            "max_tasks_per_worker": self.supervision.max_tasks_per_worker,
        }

    def _classify(self, future: Any) -> Done | tuple[FailureKind, str, str, str]:
        """Return a Done value wrapper, or (kind, cause, detail, worker) for a failure."""
        try:
            result = future.result()
        except FutureTimeout:
            return (
                FailureKind.TIMEOUT,
                f"timed out after {self.supervision.timeout:g} s; the worker was replaced",
                "",
                "",
            )
        except pebble.ProcessExpired as err:
            kind, cause = describe_exit(err.exitcode)
            return kind, cause, "", f"pid {err.pid}" if err.pid else ""
        except Exception as err:  # pickling errors and the like, raised by the pool
            return FailureKind.EXCEPTION, f"{type(err).__name__}: {err}", "", ""
        if isinstance(result, TaskError):
            return FailureKind(result.kind), result.message, result.traceback, result.worker
        return Done(-1, result.value, result.worker, result.seconds)

    def run(
        self, fn: Callable[[Any], Any], tasks: Iterable[Task], *, locality: bool = False
    ) -> Iterator[Outcome]:
        """Run every task; yield each outcome as soon as it is known.

        With ``locality``, consecutive tasks share inputs (neighbouring tiles
        share halo blocks): the tasks are cut into one contiguous band per
        worker, each worker walks its own band in order — so its caches keep
        what the next task needs — and a worker whose band is done takes the
        far half of the largest band left.
        """
        lanes = self._ensure_lanes()
        queue: _Queue = _Bands(list(tasks), len(lanes)) if locality else _Fifo(iter(tasks))
        per_lane = -(-self.max_in_flight // len(lanes))
        load = [0] * len(lanes)
        in_flight: dict[Any, tuple[int, _Attempts]] = {}
        while True:
            for lane in sorted(range(len(lanes)), key=load.__getitem__):
                while load[lane] < per_lane and len(in_flight) < self.max_in_flight:
                    attempts = queue.take(lane)
                    if attempts is None:
                        break
                    in_flight[self._submit(lanes[lane], fn, attempts)] = (lane, attempts)
                    load[lane] += 1
            if not in_flight:
                return
            finished, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                lane, attempts = in_flight.pop(future)
                load[lane] -= 1
                outcome = self._outcome(future, attempts)
                if outcome is None:
                    queue.retry(lane, attempts)
                else:
                    yield outcome

    def _submit(
        self, lane: pebble.ProcessPool, fn: Callable[[Any], Any], attempts: _Attempts
    ) -> Any:
        try:
            return lane.schedule(
                run_task, args=(fn, attempts.task.payload), timeout=self.supervision.timeout
            )
        except RuntimeError as err:
            raise ExecutorError(
                f"the worker processes could not start ({err}); if tilewise runs from "
                "a script, put the call under 'if __name__ == \"__main__\":' "
                "(workers import the main module), or see the messages above"
            ) from err

    def _outcome(self, future: Any, attempts: _Attempts) -> Outcome | None:
        """The task's outcome, or ``None`` when it failed and has attempts left."""
        outcome = self._classify(future)
        if isinstance(outcome, Done):
            return attempts.succeeded(outcome.value, outcome.worker, outcome.seconds)
        return attempts.failed(*outcome, retries=self.supervision.retries)

    def stop(self) -> None:
        """Tell every worker to stop, without waiting for them (``close`` waits)."""
        for lane in self._lanes:
            lane.stop()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.stop()
        lanes, self._lanes = self._lanes, []
        deadline = time.monotonic() + 10
        for lane in lanes:
            try:
                lane.join(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:  # pragma: no cover - pebble kills stragglers itself
                log.warning("worker processes did not stop within 10 s")
