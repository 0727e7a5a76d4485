"""One run from plan to finish: plan, journal, supervision loop, report."""

from tilewise.runner.plan import DEFAULT_TILE, Plan, make_plan
from tilewise.runner.report import RunReport, TileRecord
from tilewise.runner.run import Interrupted, execute

__all__ = ["DEFAULT_TILE", "Interrupted", "Plan", "RunReport", "TileRecord", "execute", "make_plan"]
