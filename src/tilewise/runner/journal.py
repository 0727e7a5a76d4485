"""The completion journal: which tiles are finished, and for which run.

An append-only JSON-lines file beside the output. Line 1 is the run's
fingerprint; every later line records one finished tile and its sink receipt.
A tile is journaled only after its worker has written it, so the journal never
claims more than the output holds; a torn last line (the main process killed
mid-write) is ignored; a damaged line before it refuses the resume.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, TextIO

from tilewise.errors import OutputError, OutputExistsError, ResumeError

__all__ = ["Journal", "clear_for_new_output", "journal_path"]

_VERSION = 1


def journal_path(output: Path) -> Path:
    """The journal of ``output``: ``.NAME.journal`` beside it."""
    return output.with_name(f".{output.name}.journal")


def clear_for_new_output(final: Path, partial: Path, *, overwrite: bool, no_folder: str) -> None:
    """Make way for a new output at ``final``: refuse to replace it unless ``overwrite``,
    then remove an earlier run's partial output and journal (``no_folder`` says what the
    missing parent folder is)."""
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final}: already exists; use --overwrite to replace it")
    if not final.parent.is_dir():
        raise OutputError(f"{final.parent}: {no_folder}")
    for path in (partial, journal_path(final)):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: was {old!r}, now {new!r}"]
    return []


class Journal:
    """Read and append the completion journal of one output."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.done: dict[int, dict[str, Any]] = {}
        self._fh: TextIO | None = None

    @classmethod
    def start(cls, path: Path, fingerprint: dict[str, Any]) -> Journal:
        """Begin a new journal (any old one is replaced)."""
        journal = cls(path, fingerprint)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "w") as fh:
                fh.write(json.dumps({"version": _VERSION, "fingerprint": fingerprint}) + "\n")
            os.replace(tmp, path)
        except OSError as err:
            raise OutputError(f"{path}: cannot write the journal: {err}") from err
        return journal

    @classmethod
    def resume(cls, path: Path, fingerprint: dict[str, Any]) -> Journal:
        """Load an existing journal; refuse if it belongs to a different run."""
        try:
            lines = path.read_text().splitlines()
        except OSError as err:
            raise ResumeError(f"{path}: cannot read the journal: {err}") from err
        try:
            header = json.loads(lines[0])
        except (IndexError, json.JSONDecodeError) as err:
            raise ResumeError(
                f"{path}: the journal is unreadable; start again with --overwrite"
            ) from err
        differences = _diff(header.get("fingerprint"), fingerprint)
        if differences:
            raise ResumeError(
                "cannot resume: this run differs from the one that started the output ("
                + "; ".join(differences[:5])
                + "); run it as it was, or start again with --overwrite"
            )
        journal = cls(path, fingerprint)
        last = len(lines) - 1
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                tile = int(entry["tile"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                if number - 1 == last:
                    continue  # a torn final line from a killed process: that tile is redone
                raise ResumeError(
                    f"{path}: line {number} of the journal is damaged ({line[:60]!r}); only "
                    "a torn last line can come from an interrupted run, so the journal "
                    "cannot be trusted: start again with --overwrite"
                ) from err
            journal.done[tile] = entry
        return journal

    def record(self, tile: int, entry: dict[str, Any], *, flush: bool = True) -> None:
        """Append one finished tile.

        Flushed at once (it must survive a SIGKILL of this process) unless ``flush`` is
        false: then the caller records a few together and calls :meth:`flush`.
        """
        if self._fh is None:
            self._fh = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        entry = {"tile": tile, **entry}
        try:
            self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        except OSError as err:
            raise OutputError(f"{self.path}: cannot write the journal: {err}") from err
        self.done[tile] = entry
        if flush:
            self.flush()

    def flush(self) -> None:
        """Hand the recorded entries to the operating system."""
        if self._fh is None:
            return
        try:
            self._fh.flush()
        except OSError as err:
            raise OutputError(f"{self.path}: cannot write the journal: {err}") from err

    def forget(self, tile: int) -> None:
        """Drop a tile whose output turned out to be missing or damaged."""
        self.done.pop(tile, None)

    def close(self) -> None:
        """Flush and close the file (closed even when the flush fails)."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.close()
        except OSError as err:
            raise OutputError(f"{self.path}: cannot write the journal: {err}") from err

    def remove(self) -> None:
        """Delete the journal (the output is complete)."""
        self.close()
        self.path.unlink(missing_ok=True)
