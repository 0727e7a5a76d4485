"""Executors: serial (debugging), local (supervised processes), dask (a cluster)."""

from __future__ import annotations

from typing import Any

from tilewise.errors import UsageError
from tilewise.executors.base import Done, Executor, Failed, FailureKind, Outcome, Supervision, Task

__all__ = [
    "EXECUTORS",
    "Done",
    "Executor",
    "Failed",
    "FailureKind",
    "Outcome",
    "Supervision",
    "Task",
    "make_executor",
]

EXECUTORS = ("local", "serial", "dask")


def make_executor(
    name: str | Executor,
    *,
    workers: int | None = None,
    supervision: Supervision | None = None,
    **options: Any,
) -> Executor:
    """Build an executor by name (``local``, ``serial`` or ``dask``), or pass one through."""
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
