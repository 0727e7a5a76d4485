"""The batch report: how many files were done, failed or already done, and why each failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from tilewise.errors import UsageError
from tilewise.runner.report import RunReport

__all__ = ["BatchReport", "FileRecord"]


@dataclass
class FileRecord:
    """One file that failed (done files are only counted, to keep the report small)."""

    index: int
    source: str
    cause: str
    kind: str = "exception"
    attempts: int = 1
    worker: str = ""
    detail: str = ""
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, leaving out empty fields."""
        data: dict[str, Any] = {"file": self.source, "index": self.index, "cause": self.cause}
        for key in ("kind", "attempts", "worker", "detail", "history"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


@dataclass(repr=False)
class BatchReport(RunReport):
    """Everything a batch did. ``ok`` is true when every file is done (in this run or before).

    ``total``, ``done``, ``failed`` and ``skipped`` (done by an earlier run)
    count files; ``failed_files`` names each failed file and its cause.
    """

    failed_files: list[FileRecord] = field(default_factory=list)
    pixels: int = 0
    compute_seconds: float = 0.0
    tiled: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[FileRecord]:  # type: ignore[override]
        """The files that failed, in input order."""
        return sorted(self.failed_files, key=lambda r: r.index)

    @property
    def files_per_second(self) -> float:
        """Files finished per second of this run."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def megapixels_per_second(self) -> float:
        """Input megapixels processed per second of this run."""
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def fail(self, record: FileRecord) -> None:
        """Count and keep one failed file."""
        self.failed += 1
        self.failed_files.append(record)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "tilewise_report": 1,
            "kind": "batch",
            "input": self.input,
            "output": self.output,
            "ok": self.ok,
            "finalized": self.finalized,
            "interrupted": self.interrupted,
            "files": {
                "total": self.total,
                "done": self.done,
                "failed": self.failed,
                "skipped": self.skipped,
            },
            "failures": [r.to_dict() for r in self.failures],
            "seconds": round(self.seconds, 4),
            "files_per_second": round(self.files_per_second, 2),
            "megapixels_per_second": round(self.megapixels_per_second, 3),
            "worker_seconds": round(self.compute_seconds, 4),
            "tiled_files": self.tiled,
            "executor": self.executor.get("name"),
            "workers": self.executor.get("workers"),
            "executor_options": self.executor,
            "pipeline": self.pipeline,
            **self.extra,
        }

    unit: ClassVar[str] = "files"

    def _repr_html_(self) -> str:
        """Totals and failed files (Jupyter)."""
        from tilewise.runner.report_html import report_html

        failures = [(r.source, r.cause) for r in self.failures]
        return report_html(self, failures, tile_map=False)

    def tilemap(self) -> Any:
        """A batch has no tile map: its unit is the file."""
        raise UsageError("a batch report has no tile map (its unit is the file, not the tile)")

    def rate(self) -> str:
        """Files per second for the summary line ("" when nothing was done)."""
        return f"{self.files_per_second:.0f} files/s" if self.done else ""
