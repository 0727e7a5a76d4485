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
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from tilewise.errors import OutputError, OutputExistsError, ResumeError

__all__ = ["DoneTiles", "Journal", "Receipts", "clear_for_new_output", "journal_path"]

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


class DoneTiles(Mapping[int, dict[str, Any]]):
    """The finished tiles of a journal, read back from its file when asked.

    In memory it keeps only where each tile's latest line starts (8 bytes a
    tile), so a run of a million tiles does not hold a million entries; looking
    an entry up reads its line, and :meth:`items` reads the file once, in order.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._offsets = array("q")
        self._count = 0

    def mark(self, tile: int, offset: int) -> None:
        """``tile``'s latest line starts at byte ``offset`` of the journal."""
        if tile >= len(self._offsets):
            self._offsets.extend([-1] * (tile + 1 - len(self._offsets)))
        if self._offsets[tile] < 0:
            self._count += 1
        self._offsets[tile] = offset

    def unmark(self, tile: int) -> None:
        """Forget ``tile``."""
        if tile in self:
            self._offsets[tile] = -1
            self._count -= 1

    def __contains__(self, tile: object) -> bool:
        return (
            isinstance(tile, int) and 0 <= tile < len(self._offsets) and (self._offsets[tile] >= 0)
        )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        return (tile for tile, offset in enumerate(self._offsets) if offset >= 0)

    def __getitem__(self, tile: int) -> dict[str, Any]:
        if tile not in self:
            raise KeyError(tile)
        self._journal.flush()
        with open(self._journal.path, "rb") as fh:
            fh.seek(self._offsets[tile])
            entry: dict[str, Any] = json.loads(fh.readline())
        return entry

    def items(self) -> Iterator[tuple[int, dict[str, Any]]]:  # type: ignore[override]
        """Every finished tile and its entry, read from the file in one pass."""
        self._journal.flush()
        offsets = self._offsets
        with open(self._journal.path, "rb") as fh:
            offset = len(fh.readline())
            for line in fh:
                if line.endswith(b"\n"):
                    tile = _tile_of(line)
                    if tile is not None and tile < len(offsets) and offsets[tile] == offset:
                        yield tile, json.loads(line)
                offset += len(line)


class Receipts(Mapping[int, dict[str, Any]]):
    """The sink receipts of a journal's finished tiles, read from its file when asked."""

    def __init__(self, done: DoneTiles) -> None:
        self._done = done

    def __getitem__(self, tile: int) -> dict[str, Any]:
        receipt: dict[str, Any] = self._done[tile].get("receipt", {})
        return receipt

    def __iter__(self) -> Iterator[int]:
        return iter(self._done)

    def __len__(self) -> int:
        return len(self._done)

    def items(self) -> Iterator[tuple[int, dict[str, Any]]]:  # type: ignore[override]
        """Every finished tile and its receipt, read from the file in one pass."""
        return ((tile, entry.get("receipt", {})) for tile, entry in self._done.items())

    def values(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        """Every finished tile's receipt, read from the file in one pass."""
        return (receipt for _, receipt in self.items())


def _tile_of(line: bytes) -> int | None:
    try:
        return int(json.loads(line)["tile"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _cut(path: Path, size: int) -> None:
    """Cut a torn last line off the journal, so the next line starts on a line of its own."""
    try:
        os.truncate(path, size)
    except OSError as err:
        raise ResumeError(f"{path}: cannot repair the journal's torn last line: {err}") from err


class Journal:
    """Read and append the completion journal of one output."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.done = DoneTiles(self)
        self._fh: BinaryIO | None = None
        #: The file's size: where the next line starts.
        self._size = 0

    @classmethod
    def start(cls, path: Path, fingerprint: dict[str, Any]) -> Journal:
        """Begin a new journal (any old one is replaced)."""
        journal = cls(path, fingerprint)
        tmp = path.with_name(path.name + ".tmp")
        header = (json.dumps({"version": _VERSION, "fingerprint": fingerprint}) + "\n").encode()
        try:
            with open(tmp, "wb") as fh:
                fh.write(header)
            os.replace(tmp, path)
        except OSError as err:
            raise OutputError(f"{path}: cannot write the journal: {err}") from err
        journal._size = len(header)
        return journal

    @classmethod
    def resume(cls, path: Path, fingerprint: dict[str, Any]) -> Journal:
        """Load an existing journal; refuse if it belongs to a different run."""
        try:
            with open(path, "rb") as fh:
                return cls._read(path, fh, fingerprint)
        except ResumeError:
            raise
        except OSError as err:
            raise ResumeError(f"{path}: cannot read the journal: {err}") from err

    @classmethod
    def _read(cls, path: Path, fh: BinaryIO, fingerprint: dict[str, Any]) -> Journal:
        """Check the header and index every finished tile, reading one line at a time."""
        first = fh.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError as err:
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
        offset = len(first)
        damaged: tuple[int, bytes] | None = None
        for number, line in enumerate(fh, start=2):
            if damaged is not None:  # a damaged line that is not the last one
                raise ResumeError(
                    f"{path}: line {damaged[0]} of the journal is damaged ({damaged[1][:60]!r}); "
                    "only a torn last line can come from an interrupted run, so the journal "
                    "cannot be trusted: start again with --overwrite"
                )
            tile = _tile_of(line) if line.endswith(b"\n") else None
            if tile is None:
                damaged = (number, line)
                continue
            journal.done.mark(tile, offset)
            offset += len(line)
        if damaged is not None:  # a torn final line from a killed process: its tile is redone
            _cut(path, offset)
        journal._size = offset
        return journal

    def record(self, tile: int, entry: dict[str, Any], *, flush: bool = True) -> None:
        """Append one finished tile.

        Flushed at once (it must survive a SIGKILL of this process) unless ``flush`` is
        false: then the caller records a few together and calls :meth:`flush`.
        """
        if self._fh is None:
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the run
        line = (json.dumps({"tile": tile, **entry}, separators=(",", ":")) + "\n").encode()
        try:
            self._fh.write(line)
        except OSError as err:
            raise OutputError(f"{self.path}: cannot write the journal: {err}") from err
        self.done.mark(tile, self._size)
        self._size += len(line)
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
        self.done.unmark(tile)

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
