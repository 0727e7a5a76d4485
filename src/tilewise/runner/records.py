"""The per-tile records of a run: kept in memory, or spooled to disk for large runs.

A run of a million tiles would hold a million records (~1 KiB each) until its
report is written. :class:`TileRecords` keeps the totals a report needs as it
goes (pixels and stage seconds of the done tiles, the failed records) and,
when asked to spool, appends every record as a JSON line to an unnamed
temporary file, read back only to write the report: memory stays flat in the
number of tiles. The file has no name, so it disappears with the report (or
with the process, however it ends).
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from tilewise.errors import OutputError

__all__ = ["STAGES", "TileRecord", "TileRecords"]

#: The stages of a tile as a worker times them, and how reports name them.
STAGES = {"read_s": "read+decode", "ops_s": "ops", "write_s": "encode+write"}


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
    #: Seconds in each of :data:`STAGES`, in that order (done tiles only).
    stages: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, leaving out empty fields."""
        data: dict[str, Any] = {"tile": self.tile, "window": self.window, "outcome": self.outcome}
        for key in ("worker", "seconds", "attempts", "cause", "kind", "detail", "history"):
            value = getattr(self, key)
            if value:
                data[key] = value
        if self.stages:
            data["stages"] = dict(zip(STAGES, self.stages, strict=True))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TileRecord:
        """The record :meth:`to_dict` described."""
        stages = data.get("stages")
        return cls(
            data["tile"],
            data["window"],
            data["outcome"],
            data.get("worker", ""),
            data.get("seconds", 0.0),
            data.get("attempts", 0),
            data.get("cause", ""),
            data.get("kind", ""),
            data.get("detail", ""),
            data.get("history", []),
            tuple(stages[key] for key in STAGES) if stages else (),
        )


class TileRecords:
    """The records of a run's tiles, in the order they finished, with running totals.

    Parameters
    ----------
    spool
        A folder: keep the records in an unnamed file there instead of in memory.
    """

    def __init__(self, spool: str | os.PathLike[str] | None = None) -> None:
        self._kept: list[TileRecord] = []
        self._file: IO[bytes] | None = None
        self._count = 0
        self._folder = spool
        if spool is not None:
            try:
                self._file = tempfile.TemporaryFile(dir=spool, prefix=".tilewise-records-")  # noqa: SIM115
            except OSError as err:
                raise OutputError(f"{spool}: cannot keep the tile records there: {err}") from err
            # the report, and these records with it, may outlive the run: the file is closed
            # when they go, explicitly rather than by the collector
            weakref.finalize(self, self._file.close)
        #: The done tiles' pixels, and their seconds in each stage (when timed).
        self.pixels_done = 0
        self.stage_sums = [0.0] * len(STAGES)
        #: The done tiles' seconds, as the executor measured them, over those with stages.
        self.staged_seconds = 0.0
        #: The records of failed tiles (always kept in memory: they are few, and reported).
        self.failures: list[TileRecord] = []

    @property
    def spooled(self) -> bool:
        """Whether the records are on disk."""
        return self._file is not None

    def append(self, record: TileRecord) -> None:
        """Add one tile's record."""
        self._count += 1
        if record.outcome == "done":
            self.pixels_done += record.window["height"] * record.window["width"]
            if record.stages:
                for number, seconds in enumerate(record.stages):
                    self.stage_sums[number] += seconds
                self.staged_seconds += record.seconds
        else:
            self.failures.append(record)
        if self._file is None:
            self._kept.append(record)
            return
        try:
            self._file.write(json.dumps(record.to_dict(), separators=(",", ":")).encode() + b"\n")
        except OSError as err:
            raise OutputError(f"{self._folder}: cannot spool the tile records: {err}") from err

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[TileRecord]:
        if self._file is None:
            yield from self._kept
            return
        file = self._file
        file.flush()
        end = file.tell()
        file.seek(0)
        try:
            while file.tell() < end:
                yield TileRecord.from_dict(json.loads(file.readline()))
        finally:
            file.seek(end)

    def close(self) -> None:
        """Drop the spooled records (the file is deleted)."""
        if self._file is not None:
            self._file.close()
