"""The serial executor: every task in the calling process, one after another.

For debugging only (a debugger and print() work); it offers no crash isolation
and no timeouts: a segfault in an op takes the whole program down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tilewise.executors._worker import TaskError, run_task
from tilewise.executors.base import Attempts, Executor, FailureKind, Outcome, Supervision, Task

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """Runs tasks in this process, in order, retrying exceptions as configured."""

    name = "serial"

    def __init__(self, workers: int = 1, supervision: Supervision | None = None) -> None:
        super().__init__(1, supervision)

    def map_tasks(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Task],
        *,
        locality: bool = False,
        supervision: Supervision | None = None,
    ) -> Iterator[Outcome]:
        retries = (supervision or self.supervision).retries
        for task in tasks:
            attempts = Attempts(task)
            while True:
                result = run_task(fn, task.payload)
                if not isinstance(result, TaskError):
                    yield attempts.succeeded(result.value, result.worker, result.seconds)
                    break
                failed = attempts.failed(
                    FailureKind(result.kind),
                    result.message,
                    result.traceback,
                    result.worker,
                    retries,
                    result.seconds,
                )
                if failed is not None:
                    yield failed
                    break
