"""The local executor: supervised worker processes on this machine.

Built on pebble's ``ProcessPool``, which — unlike ``multiprocessing.Pool`` and
``ProcessPoolExecutor`` — loses only the task of a worker that dies and
replaces the worker, and kills and replaces a worker whose task times out.
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pebble

from tilewise.errors import ExecutorError, UsageError
from tilewise.executors._worker import TaskError, initialize, run_task
from tilewise.executors.base import (
    Done,
    Executor,
    Failed,
    FailureKind,
    Outcome,
    Supervision,
    Task,
    _Attempts,
)

__all__ = ["LocalExecutor", "describe_exit"]

log = logging.getLogger(__name__)

# Imported once by the fork server, so every worker starts with them loaded.
_PRELOAD = ["tilewise.executors._worker", "tilewise.runner.work", "numpy", "cv2", "tifffile"]


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


def _warm_up() -> None:
    """A no-op task: gets a worker process started."""


class LocalExecutor(Executor):
    """Supervised worker processes on this machine.

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
    """

    name = "local"

    def __init__(
        self,
        workers: int | None = None,
        supervision: Supervision | None = None,
        *,
        max_in_flight: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        workers = workers or os.cpu_count() or 1
        if workers < 1:
            raise UsageError(f"workers must be at least 1, got {workers}")
        super().__init__(workers, supervision)
        self.max_in_flight = max_in_flight or 2 * workers
        if start_method not in ("fork", "forkserver", "spawn"):
            raise UsageError(f"start method must be fork, forkserver or spawn, got {start_method}")
        self.start_method = start_method
        self._pool: pebble.ProcessPool | None = None

    def _ensure_pool(self) -> pebble.ProcessPool:
        if self._pool is None:
            context = multiprocessing.get_context(self.start_method)
            if self.start_method == "forkserver":
                context.set_forkserver_preload(_PRELOAD)
            self._pool = pebble.ProcessPool(
                max_workers=self.workers,
                max_tasks=self.supervision.max_tasks_per_worker or 0,
                initializer=initialize,
                initargs=(self.supervision.memory_limit,),
                context=context,
            )
        return self._pool

    def start(self) -> None:
        """Start the fork server and the workers now (each runs a no-op task)."""
        pool = self._ensure_pool()
        for _ in range(self.workers):
            pool.schedule(_warm_up)

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

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Task]) -> Iterator[Outcome]:
        pool = self._ensure_pool()
        source = iter(tasks)
        retry: deque[_Attempts] = deque()
        in_flight: dict[Any, _Attempts] = {}
        exhausted = False
        timeout = self.supervision.timeout
        while True:
            while len(in_flight) < self.max_in_flight and (retry or not exhausted):
                if retry:
                    attempts = retry.popleft()
                else:
                    try:
                        attempts = _Attempts(next(source))
                    except StopIteration:
                        exhausted = True
                        break
                future: Any
                try:
                    future = pool.schedule(
                        run_task, args=(fn, attempts.task.payload), timeout=timeout
                    )
                except RuntimeError as err:
                    raise ExecutorError(
                        f"the worker processes could not start ({err}); if tilewise runs from "
                        "a script, put the call under 'if __name__ == \"__main__\":' "
                        "(workers import the main module), or see the messages above"
                    ) from err
                in_flight[future] = attempts
            if not in_flight:
                return
            finished, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                attempts = in_flight.pop(future)
                outcome = self._classify(future)
                key = attempts.task.key
                if isinstance(outcome, Done):
                    yield Done(
                        key,
                        outcome.value,
                        outcome.worker,
                        outcome.seconds,
                        attempts.number,
                        tuple(attempts.history),
                    )
                    continue
                kind, cause, detail, worker = outcome
                attempts.history.append(cause)
                if attempts.number <= self.supervision.retries:
                    log.info(
                        "task %s attempt %d failed (%s); retrying", key, attempts.number, cause
                    )
                    attempts.number += 1
                    retry.append(attempts)
                    continue
                yield Failed(
                    key, kind, cause, detail, worker, 0.0, attempts.number, tuple(attempts.history)
                )

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.stop()  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 10
        try:
            pool.join(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:  # pragma: no cover - pebble kills stragglers itself
            log.warning("worker processes did not stop within 10 s")
