"""Stalled tasks: the default guard when a run has no ``--timeout``.

A worker stopped by SIGSTOP, or stuck in uninterruptible I/O on a hung mount, neither
answers nor dies, so without a timeout its run would wait at 254/256 forever. A task is
*stalled* once it has run longer than the run's own tile times justify — more than
``factor`` times the 95th percentile of the tasks finished so far, and more than
``floor`` seconds — and it is *given up* at ``limit`` times that: its worker is killed
and replaced and the task retried, like a timeout. The rule needs ``min_samples``
finished tasks to know what normal is; before that, only ``--timeout`` applies.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from tilewise.errors import UsageError

__all__ = ["StallRule", "StallWatch"]

#: Most recent task times kept for the percentile.
_KEPT = 2048


@dataclass(frozen=True, slots=True)
class StallRule:
    """When a running task counts as stalled, and when it is given up.

    Parameters
    ----------
    factor
        Stalled past ``factor`` × the 95th percentile of the finished tasks' times...
    floor
        ...and past ``floor`` seconds.
    limit
        Given up (worker killed, task retried) at ``limit`` × the stalled threshold.
    min_samples
        Finished tasks needed before the rule applies.
    """

    factor: float = 10.0
    floor: float = 60.0
    limit: float = 3.0
    min_samples: int = 5

    def __post_init__(self) -> None:
        if self.factor <= 0 or self.floor < 0 or self.limit < 1 or self.min_samples < 1:
            raise UsageError(
                f"stall rule needs factor > 0, floor >= 0, limit >= 1 and min_samples >= 1, got "
                f"factor={self.factor}, floor={self.floor}, limit={self.limit}, "
                f"min_samples={self.min_samples}"
            )


class StallWatch:
    """The finished tasks' times of one run, and the thresholds they give."""

    def __init__(self, rule: StallRule) -> None:
        self.rule = rule
        self._times: deque[float] = deque(maxlen=_KEPT)
        self._p95: float | None = None

    def add(self, seconds: float) -> None:
        """Count one finished task's time."""
        self._times.append(seconds)
        self._p95 = None

    def p95(self) -> float | None:
        """The 95th percentile of the times kept (None before ``min_samples`` of them).

        >>> watch = StallWatch(StallRule(min_samples=2))
        >>> for s in range(1, 21):
        ...     watch.add(float(s))
        >>> watch.p95()
        19.0
        """
        if len(self._times) < self.rule.min_samples:
            return None
        if self._p95 is None:
            ordered = sorted(self._times)
            self._p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        return self._p95

    def thresholds(self) -> tuple[float, float] | None:
        """Seconds after which a running task is stalled, and given up; None if not known yet."""
        p95 = self.p95()
        if p95 is None:
            return None
        stalled = max(self.rule.factor * p95, self.rule.floor)
        return stalled, self.rule.limit * stalled
