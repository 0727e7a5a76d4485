"""Stalled workers: without --timeout, a worker stopped by SIGSTOP is found and replaced."""

from __future__ import annotations

import pytest

from tests.executors import tasks
from tilewise.errors import UsageError
from tilewise.executors import Done, StallRule, Supervision, Task
from tilewise.executors.local import LocalExecutor


def test_a_worker_stopped_by_sigstop_is_reported_stalled_then_replaced(tmp_path):
    stalled: list[tuple[int, float, float]] = []
    supervision = Supervision(
        retries=1,
        stall=StallRule(factor=4, floor=0.5, limit=2, min_samples=3),
        on_stall=lambda key, seconds, give_up: stalled.append((key, seconds, give_up)),
    )
    work = [Task(i, (i, str(tmp_path))) for i in range(12)]
    with LocalExecutor(2, supervision) as executor:
        outcomes = {o.key: o for o in executor.map_tasks(tasks.stop_self_once, work)}
    assert sorted(outcomes) == list(range(12))
    assert all(isinstance(o, Done) for o in outcomes.values())
    assert outcomes[7].attempts == 2
    assert outcomes[7].history[0].startswith("stalled: ran")
    assert [key for key, _, _ in stalled] == [7]
    (_, seconds, give_up) = stalled[0]
    assert 0.5 <= seconds < give_up


def test_a_stall_rule_that_cannot_work_is_refused():
    with pytest.raises(UsageError, match="limit >= 1"):
        StallRule(limit=0.5)
