"""Quick tasks go to workers in runs; outcomes, retries and failures stay per task."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tests.executors import tasks as t
from tilewise.executors import Done, Executor, Failed, FailureKind, Outcome, Supervision, Task
from tilewise.executors.local import LocalExecutor
from tilewise.executors.runs import map_in_runs

COUNT = 200


class Counting(Executor):
    """Passes calls to a local executor, counting the tasks it is handed."""

    def __init__(self, inner: LocalExecutor) -> None:
        super().__init__(inner.workers, inner.supervision)
        self.inner = inner
        self.dispatched = 0

    def map_tasks(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Task],
        *,
        locality: bool = False,
        supervision: Supervision | None = None,
    ) -> Iterator[Outcome]:
        def counted() -> Iterator[Task]:
            for task in tasks:
                self.dispatched += 1
                yield task

        return self.inner.map_tasks(fn, counted(), locality=locality, supervision=supervision)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalExecutor]:
    with LocalExecutor(2) as executor:
        yield executor


def outcomes(
    executor: Executor, fn: Callable[[int], int], **supervision: Any
) -> dict[int, Outcome]:
    work = (Task(k, k) for k in range(COUNT))
    got: dict[int, Outcome] = {}
    for outcome in map_in_runs(
        executor, fn, work, count=COUNT, supervision=Supervision(**supervision)
    ):
        assert outcome.key not in got, f"task {outcome.key} settled twice"
        got[outcome.key] = outcome
    assert sorted(got) == list(range(COUNT))
    return got


def test_quick_tasks_travel_in_runs_and_settle_one_by_one(local):
    counting = Counting(local)
    got = outcomes(counting, t.square)
    assert all(
        isinstance(o, Done) and o.value == o.key**2 and o.attempts == 1 for o in got.values()
    )
    assert counting.dispatched <= COUNT // 4  # 4 probes, then runs of ~25


def test_an_exception_in_a_run_fails_its_task_only_after_its_own_retries(local):
    got = outcomes(local, t.fail_on_fifty, retries=1)
    failed = got.pop(50)
    assert isinstance(failed, Failed) and failed.attempts == 2
    assert failed.history == ("RuntimeError: fifty is right out",) * 2
    assert all(isinstance(o, Done) and o.attempts == 1 for o in got.values())


def test_a_failure_of_the_environment_in_a_run_is_not_retried(local):
    got = outcomes(local, t.disk_full_on_fifty, retries=2)
    failed = got.pop(50)
    assert isinstance(failed, Failed) and failed.kind is FailureKind.ENVIRONMENT
    assert failed.attempts == 1 and "No space left on device" in failed.cause
    assert all(isinstance(o, Done) for o in got.values())


@pytest.mark.parametrize("fn", [t.abort_on_fifty, t.hang_on_fifty], ids=["crash", "hang"])
def test_a_poison_task_costs_its_run_mates_nothing_even_without_retries(local, fn):
    got = outcomes(local, fn, retries=0, timeout=2.0)
    poisoned = got.pop(50)
    assert isinstance(poisoned, Failed)
    assert "in a run of" in poisoned.history[0]
    assert all(isinstance(o, Done) and o.value == o.key for o in got.values())
