"""The run report: what ran, where, how long, and what failed and why."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["RunReport", "TileRecord"]


@dataclass
class TileRecord:
    """One tile's outcome."""

    tile: int
    window: dict[str, int]
    outcome: str
    worker: str = ""
    seconds: float = 0.0
    attempts: int = 0
    cause: str = ""
    kind: str = ""
    detail: str = ""
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, leaving out empty fields."""
        data: dict[str, Any] = {"tile": self.tile, "window": self.window, "outcome": self.outcome}
        for key in ("worker", "seconds", "attempts", "cause", "kind", "detail", "history"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


@dataclass
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
    finalized: bool = False
    tiles: list[TileRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every tile finished, in this run or an earlier one."""
        return (
            self.failed == 0 and self.interrupted is None and self.done + self.skipped == self.total
        )

    @property
    def failures(self) -> list[TileRecord]:
        """The tiles that failed."""
        return [t for t in self.tiles if t.outcome == "failed"]

    @property
    def megapixels_per_second(self) -> float:
        """Throughput over the tiles done in this run."""
        pixels = sum(
            t.window["height"] * t.window["width"] for t in self.tiles if t.outcome == "done"
        )
        return pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/report.md)."""
        return {
            "tilewise_report": 1,
            "input": self.input,
            "output": self.output,
            "ok": self.ok,
            "finalized": self.finalized,
            "interrupted": self.interrupted,
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
            "per_tile": [t.to_dict() for t in self.tiles],
            **self.extra,
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON report atomically."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, target)

    #: What ``total``, ``done``, ``failed`` and ``skipped`` count.
    unit: ClassVar[str] = "tiles"

    def rate(self) -> str:
        """The throughput for the summary line ("" when nothing was done)."""
        rate = self.megapixels_per_second
        return f"{rate:.0f} MPix/s" if rate else ""

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.done} done"]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.failed:
            parts.append(f"{self.failed} failed")
        rate = self.rate()
        return f"{self.total} {self.unit}: {', '.join(parts)} in {self.seconds:.1f} s" + (
            f" ({rate})" if rate else ""
        )
