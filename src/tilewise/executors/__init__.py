"""Executors: serial (debugging), local (supervised processes), dask (a cluster).

The names from :mod:`tilewise.executors.base` load on first use, so the command line
can start the fork server (:mod:`tilewise.executors.forkserver`) before anything else.
"""

from __future__ import annotations

from tilewise._lazy import attach
from tilewise.errors import UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~15 ms)
if TYPE_CHECKING:
    from typing import Any

    from tilewise.executors.base import Done as Done
    from tilewise.executors.base import Executor as Executor
    from tilewise.executors.base import Failed as Failed
    from tilewise.executors.base import FailureKind as FailureKind
    from tilewise.executors.base import Outcome as Outcome
    from tilewise.executors.base import StallRule as StallRule
    from tilewise.executors.base import Supervision as Supervision
    from tilewise.executors.base import Task as Task

__all__ = [
    "EXECUTORS",
    "Done",
    "Executor",
    "Failed",
    "FailureKind",
    "Outcome",
    "StallRule",
    "Supervision",
    "Task",
    "make_executor",
]

EXECUTORS = ("local", "serial", "dask")
__getattr__, _ = attach(
    __name__,
    dict.fromkeys(
        (
            "Done",
            "Executor",
            "Failed",
            "FailureKind",
            "Outcome",
            "StallRule",
            "Supervision",
            "Task",
        ),
        "tilewise.executors.base",
    ),
)


def make_executor(
    name: str | Executor,
    *,
    workers: int | None = None,
    supervision: Supervision | None = None,
    **options: Any,
) -> Executor:
    """Build an executor by name (``local``, ``serial`` or ``dask``), or pass one through."""
    from tilewise.executors.base import Executor

    if isinstance(name, Executor):
        return name
    if name == "local":
        from tilewise.executors.local import LocalExecutor

        return LocalExecutor(workers, supervision, **options)
    if name == "serial":
        from tilewise.executors.serial import SerialExecutor

        return SerialExecutor(1, supervision)
    if name == "dask":
        from tilewise.executors.dask import DaskExecutor

        return DaskExecutor(workers, supervision, **options)
    raise UsageError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
