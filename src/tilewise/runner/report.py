"""The run report: what ran, where, how long, and what failed and why."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from tilewise.runner.records import STAGES, TileRecord, TileRecords

__all__ = ["STAGES", "RunReport", "TileRecord", "TileRecords", "format_stages"]


def format_stages(stages: dict[str, float]) -> str:
    """One line of where the workers' time went, from a report's ``stages``.

    >>> format_stages({"read_s": 2, "ops_s": 1, "write_s": 0.5, "busy_s": 4, "wait_s": 0})
    'read+decode 2.0 s (50%) · ops 1.0 s (25%) · encode+write 0.5 s (12%) · other 0.5 s (12%)'
    """
    staged = sum(stages.get(key, 0.0) for key in STAGES)
    parts = [(name, stages.get(key, 0.0)) for key, name in STAGES.items()]
    parts.append(("other", max(0.0, stages.get("busy_s", 0.0) - staged)))
    parts.append(("waiting", stages.get("wait_s", 0.0)))
    total = sum(seconds for _, seconds in parts) or 1.0
    return " · ".join(
        f"{name} {seconds:.1f} s ({100 * seconds / total:.0f}%)"
        for name, seconds in parts
        if seconds > 0 or name in ("read+decode", "ops", "encode+write")
    )


@dataclass(repr=False)
class RunReport:
    """Everything a run did. ``ok`` is true when every tile is done."""

    input: str
    output: str | None
    pipeline: list[str]
    grid: dict[str, Any]
    executor: dict[str, Any]
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    interrupted: str | None = None
    #: Set when a failure of the environment (storage gone, disk full) stopped the run:
    #: the failed tile and its cause. The tiles not done were not run (or were stopped).
    stopped_by: str | None = None
    finalized: bool = False
    #: Every tile's record, in memory or spooled to disk (see :class:`TileRecords`).
    tiles: TileRecords = field(default_factory=TileRecords)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every tile finished, in this run or an earlier one."""
        return (
            self.failed == 0
            and self.interrupted is None
            and self.stopped_by is None
            and self.done + self.skipped == self.total
        )

    @property
    def not_run(self) -> int:
        """Units neither done (now or before) nor failed: left by an interruption or a stop."""
        return max(0, self.total - self.done - self.skipped - self.failed)

    @property
    def failures(self) -> list[TileRecord]:
        """The tiles that failed."""
        return list(self.tiles.failures)

    def stage_totals(self) -> dict[str, float]:
        """Worker-seconds per stage over the tiles done in this run, and where the rest went.

        ``read_s``, ``ops_s`` and ``write_s`` sum the stages the workers timed;
        ``busy_s`` is the workers' time on those tiles as the executor measured it
        (the stages plus the task's own handling, so never less than their sum);
        ``wait_s`` is the rest of the workers' time during the run — start-up,
        waiting for a task, and the idle end of the run — as
        ``workers x tiles_s - busy_s``.
        """
        totals = dict(zip(STAGES, self.tiles.stage_sums, strict=True))
        busy = self.tiles.staged_seconds
        workers = self.executor.get("workers") or 1
        wall = float(self.extra.get("phases", {}).get("tiles_s", self.seconds))
        totals["busy_s"] = busy
        totals["wait_s"] = max(0.0, workers * wall - busy)
        return {key: round(value, 4) for key, value in totals.items()}

    @property
    def megapixels_per_second(self) -> float:
        """Throughput over the tiles done in this run."""
        pixels = self.tiles.pixels_done
        return pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/report.md)."""
        return {**self._head(), "per_tile": [t.to_dict() for t in self.tiles], **self.extra}

    def _head(self) -> dict[str, Any]:
        return {
            "tilewise_report": 1,
            "input": self.input,
            "output": self.output,
            "ok": self.ok,
            "finalized": self.finalized,
            "interrupted": self.interrupted,
            "stopped_by": self.stopped_by,
            "tiles": {
                "total": self.total,
                "done": self.done,
                "failed": self.failed,
                "skipped": self.skipped,
            },
            "failures": [
                {
                    "tile": t.tile,
                    "window": t.window,
                    "cause": t.cause,
                    "kind": t.kind,
                    "attempts": t.attempts,
                    "worker": t.worker,
                    "detail": t.detail,
                    "history": t.history,
                }
                for t in self.failures
            ],
            "seconds": round(self.seconds, 4),
            "megapixels_per_second": round(self.megapixels_per_second, 3),
            "executor": self.executor.get("name"),
            "workers": self.executor.get("workers"),
            "executor_options": self.executor,
            "pipeline": self.pipeline,
            "grid": self.grid,
            "stages": self.stage_totals(),
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON report atomically (spooled per-tile records streamed one by one)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        if not self.tiles.spooled:  # (a subclass may have a form of its own)
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
            os.replace(tmp, target)
            return
        head = json.dumps({**self._head(), **self.extra}, indent=1)
        with open(tmp, "w") as fh:
            fh.write(head[:-2] + ',\n "per_tile": [')
            for number, record in enumerate(self.tiles):
                fh.write(("\n  " if number == 0 else ",\n  ") + json.dumps(record.to_dict()))
            fh.write("\n ]\n}\n")
        os.replace(tmp, target)

    #: What ``total``, ``done``, ``failed`` and ``skipped`` count.
    unit: ClassVar[str] = "tiles"

    def rate(self) -> str:
        """The throughput for the summary line ("" when nothing was done)."""
        rate = self.megapixels_per_second
        return f"{rate:.0f} MPix/s" if rate else ""

    def __repr__(self) -> str:
        from tilewise.runner.report_html import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        """Totals, time per stage, failures and the tile map inline (Jupyter)."""
        from tilewise.runner.report_html import report_html

        failures = [(f"tile {t.tile} {_window_text(t.window)}", t.cause) for t in self.failures]
        return report_html(self, failures, tile_map=True)

    def tilemap(self) -> Figure:
        """The tile map: who processed which tile, how long it took, what failed.

        Returns
        -------
        matplotlib.figure.Figure
            On its own Agg canvas (pyplot is left alone); needs ``tilewise[report]``.
        """
        from tilewise.runner.tilemap import tile_map_figure

        return tile_map_figure(self.to_dict())

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.done} done"]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.stopped_by is not None:
            parts.append(f"{self.not_run} not run")
        rate = self.rate()
        return f"{self.total} {self.unit}: {', '.join(parts)} in {self.seconds:.1f} s" + (
            f" ({rate})" if rate else ""
        )


def _window_text(window: dict[str, int]) -> str:
    r, c, h, w = window["row"], window["col"], window["height"], window["width"]
    plane = f"plane {window['plane']}, " if "plane" in window else ""
    return f"({plane}rows {r}:{r + h}, cols {c}:{c + w})"
