"""The serial executor: every task in the calling process, one after another.

For debugging only (a debugger and print() work); it offers no crash isolation
and no timeouts: a segfault in an op takes the whole program down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tilewise.executors._worker import TaskError, run_task
from tilewise.executors.base import Done, Executor, Failed, FailureKind, Outcome, Task

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """Runs tasks in this process, in order, retrying exceptions as configured."""

    name = "serial"

    def __init__(self, workers: int = 1, supervision: Any = None) -> None:
        super().__init__(1, supervision)

    def run(
        self, fn: Callable[[Any], Any], tasks: Iterable[Task], *, locality: bool = False
    ) -> Iterator[Outcome]:
        for task in tasks:
            history: list[str] = []
            for attempt in range(1, self.supervision.retries + 2):
                result = run_task(fn, task.payload)
                if not isinstance(result, TaskError):
                    yield Done(
                        task.key,
                        result.value,
                        result.worker,
                        result.seconds,
                        attempt,
                        tuple(history),
                    )
                    break
                history.append(result.message)
                if attempt > self.supervision.retries:
                    yield Failed(
                        task.key,
                        FailureKind(result.kind),
                        result.message,
                        result.traceback,
                        result.worker,
                        result.seconds,
                        attempt,
                        tuple(history),
                    )
