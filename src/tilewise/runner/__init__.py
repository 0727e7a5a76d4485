"""One run from plan to finish: plan, lifecycle, journal, supervision loop, report.

The package loads nothing: each name is imported from its module
(``tilewise.runner.lifecycle.Lifecycle``, ``tilewise.runner.plan.make_plan``,
``tilewise.runner.report.RunReport``, ...), so a worker that needs one helper
(``runner.georef``, ``runner.work``) does not load the lifecycle, and a batch does not
load the planner and the tile loop. ``tilewise.RunReport`` is the public name of the report.
"""
