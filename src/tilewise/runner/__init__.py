"""One run from plan to finish: plan, lifecycle, journal, supervision loop, report."""

from tilewise.runner.lifecycle import Lifecycle
from tilewise.runner.plan import DEFAULT_TILE, Plan, make_plan
from tilewise.runner.report import RunReport, TileRecord
from tilewise.runner.run import execute_plan

__all__ = [
    "DEFAULT_TILE",
    "Lifecycle",
    "Plan",
    "RunReport",
    "TileRecord",
    "execute_plan",
    "make_plan",
]
