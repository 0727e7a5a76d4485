"""The executor interface: run a picklable function on picklable tasks, report each outcome.

Executors know nothing of images. They supervise: bounded in-flight work,
retries, timeouts, replacement of dead workers, and one outcome per task —
:class:`Done` or :class:`Failed` — with the cause of any failure.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from tilewise.executors._stall import StallRule

__all__ = [
    "Attempts",
    "Done",
    "Executor",
    "Failed",
    "FailureKind",
    "Outcome",
    "StallRule",
    "Supervision",
    "Task",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work: a key (tile or file number) and a small picklable payload."""

    key: int
    payload: Any


class FailureKind(StrEnum):
    """Why a task failed."""

    EXCEPTION = "exception"
    CRASH = "crash"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    LOST = "lost"
    #: Not the task's fault: object storage gone after its own retries, or an output disk
    #: full (see :func:`~tilewise.executors._worker.environment_failure`). Never retried:
    #: the next attempt, or the next task, would meet the same.
    ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class Done:
    """A task that finished: its return value and where and how long it ran."""

    key: int
    value: Any
    worker: str
    seconds: float
    attempts: int = 1
    history: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    """A task that failed on every attempt: the last cause, and every attempt's cause."""

    key: int
    kind: FailureKind
    cause: str
    detail: str = ""
    worker: str = ""
    seconds: float = 0.0
    attempts: int = 1
    history: tuple[str, ...] = ()


Outcome = Done | Failed


@dataclass(frozen=True, slots=True)
class Supervision:
    """How hard to try, and what to tolerate.

    Parameters
    ----------
    retries
        Extra attempts after a failure (a tile is tried ``retries + 1`` times).
    timeout
        Seconds one task may run before its worker is killed and replaced.
    memory_limit
        Bytes one worker may allocate beyond its start-up size.
    max_tasks_per_worker
        Replace each worker after this many tasks (for leaking native code).
    stall
        Without a ``timeout``: when a running task counts as stalled and when it is
        given up like a timed-out one (see :class:`StallRule`); None turns it off.
        The local executor applies it.
    on_stall
        Called as ``on_stall(key, seconds, give_up_at)`` once when a task is found
        stalled (e.g. to show it on a progress line).
    """

    retries: int = 2
    timeout: float | None = None
    memory_limit: int | None = None
    max_tasks_per_worker: int | None = None
    stall: StallRule | None = field(default_factory=StallRule)
    on_stall: Callable[[int, float, float], None] | None = field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        from tilewise.errors import UsageError

        if self.retries < 0:
            raise UsageError(f"retries must be 0 or more, got {self.retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"timeout must be positive, got {self.timeout}")
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise UsageError(f"memory limit must be positive, got {self.memory_limit}")
        if self.max_tasks_per_worker is not None and self.max_tasks_per_worker <= 0:
            raise UsageError(
                f"max tasks per worker must be positive, got {self.max_tasks_per_worker}"
            )


@dataclass
class Attempts:
    """Bookkeeping of one task's attempts inside an executor: every executor retries with it."""

    task: Task
    number: int = 1
    history: list[str] = field(default_factory=list)

    def succeeded(self, value: Any, worker: str, seconds: float) -> Done:
        """The task's :class:`Done` outcome."""
        return Done(self.task.key, value, worker, seconds, self.number, tuple(self.history))

    def failed(
        self,
        kind: FailureKind,
        cause: str,
        detail: str,
        worker: str,
        retries: int,
        seconds: float = 0.0,
    ) -> Failed | None:
        """Record a failed attempt: ``None`` if another is due, else the final :class:`Failed`.

        A failure of the environment (:attr:`FailureKind.ENVIRONMENT`) is final at once.
        """
        self.history.append(cause)
        if self.number <= retries and kind is not FailureKind.ENVIRONMENT:
            log.info("task %s attempt %d failed (%s); retrying", self.task.key, self.number, cause)
            self.number += 1
            return None
        return Failed(self.task.key, kind, cause, detail, worker, seconds, self.number,
                      tuple(self.history))  # fmt: skip


class Executor(abc.ABC):
    """Runs ``fn(payload)`` for every task and yields one outcome per task, in completion order.

    Executors in a variable are named ``executor``; their one way to run work is
    :meth:`map_tasks`.
    """

    name: str = "executor"

    def __init__(self, workers: int, supervision: Supervision | None = None) -> None:
        self.workers = workers
        self.supervision = supervision or Supervision()

    @abc.abstractmethod
    def map_tasks(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Task],
        *,
        locality: bool = False,
        supervision: Supervision | None = None,
    ) -> Iterator[Outcome]:
        """Run every task; yield each outcome as soon as it is known.

        ``locality`` hints that consecutive tasks share inputs, so running runs of
        them on the same worker saves work; executors may ignore it.
        ``supervision`` applies its ``retries`` and ``timeout`` to these tasks
        only (default: the executor's own); the limits of the worker processes
        (``memory_limit``, ``max_tasks_per_worker``) stay the executor's. The
        executor itself is not changed, so a caller's executor can serve other
        calls with its own settings.
        """

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start workers ahead of the first task (optional; ``map_tasks`` starts them anyway).

        Lets worker start-up overlap with the caller's own preparation.
        """

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Tell workers to stop without waiting for them; ``close`` waits.

        Lets the caller finish its own work while the workers wind down.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop workers and free resources. Safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """Facts about the executor for the report."""
        return {"name": self.name, "workers": self.workers}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
