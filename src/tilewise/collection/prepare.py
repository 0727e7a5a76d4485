"""Setting up a batch's output — a folder or a stack — and its journal, fresh or resumed.

The journal (:class:`tilewise.runner.journal.Journal`) lives beside the output
(``.DIR.journal``, ``.STACK.npy.journal``); its first line is the batch's
fingerprint — the input list, the pipeline and the output — and each later
line one finished file. A stack is built under ``.STACK.npy.partial`` and
moved into place when the batch has run to the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tilewise.collection.collect import Item
from tilewise.collection.write import output_intact
from tilewise.errors import OutputError, OutputExistsError, ResumeError
from tilewise.io import Sink, StackSpec, partial_path, reopen_stack, stack_sink_class
from tilewise.runner.journal import Journal, clear_for_new_output, journal_path

__all__ = [
    "Prepared",
    "fingerprint",
    "forget_changed",
    "prepare_stack",
    "prepare_tree",
    "verify_done",
]

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """An output ready for work: its journal, and the stack if it already exists."""

    journal: Journal
    resumed: bool
    stack: StackSpec | None = None


def fingerprint(items: list[Item], pipeline: list[str], output: dict[str, Any]) -> dict[str, Any]:
    """What a resumed batch must share with the batch that started the output."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.source}\x00{item.name}\n".encode("utf-8", "surrogateescape"))
    return {
        "batch": 1,
        "inputs": {"count": len(items), "sha256": digest.hexdigest()},
        "pipeline": pipeline,
        "output": output,
    }


def _has_entries(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(entries)


def prepare_tree(out: Path, print_: dict[str, Any], *, overwrite: bool, resume: bool) -> Prepared:
    """Create or reopen the output folder ``out`` and its journal."""
    jpath = journal_path(out)
    if resume and jpath.exists():
        return Prepared(Journal.resume(jpath, print_), True)
    if jpath.exists() and not overwrite:
        raise ResumeError(
            f"{out}: an earlier batch into this folder did not finish ({jpath.name} exists); "
            "continue it with --resume, or start again with --overwrite"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; --out needs a folder")
    if out.is_dir() and _has_entries(out) and not overwrite:
        if resume:
            raise OutputExistsError(
                f"{out}: there is no unfinished batch to resume (no {jpath.name}) and the folder "
                "is not empty; use --overwrite to run the batch again into it"
            )
        raise OutputExistsError(
            f"{out}: the output folder exists and is not empty; use --overwrite to write into "
            "it (files of the same name are replaced), or choose another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create the output folder: {err}") from err
    return Prepared(Journal.start(jpath, print_), False)


def prepare_stack(
    final: Path,
    print_: dict[str, Any],
    *,
    count: int,
    options: Mapping[str, Any],
    token: str,
    overwrite: bool,
    resume: bool,
) -> Prepared:
    """Reopen a stack of ``count`` rows to resume (returned in :attr:`Prepared.stack`), or
    clear the way for one (created once the first file gives the rows' shape)."""
    partial = partial_path(final)
    jpath = journal_path(final)
    if resume and jpath.exists():
        journal = Journal.resume(jpath, print_)
        where = partial if partial.exists() else final if final.exists() else None
        if where is not None:
            reopened = reopen_stack(str(final), str(where), count, options, token=token)
            return Prepared(journal, True, reopened)
        if journal.done:
            raise ResumeError(
                f"{final}: the journal lists finished files but the stack is gone; start again "
                "with --overwrite"
            )
    elif jpath.exists() and not overwrite:
        raise ResumeError(
            f"{final}: an earlier batch of this stack did not finish ({jpath.name} exists); "
            "continue it with --resume, or start again with --overwrite"
        )
    clear_for_new_output(
        final, partial, overwrite=overwrite, no_folder="the stack's folder does not exist"
    )
    return Prepared(Journal.start(jpath, print_), False)


def forget_changed(prepared: Prepared, items: list[Item]) -> list[int]:
    """Forget journaled files whose input in object storage changed since it was done.

    An object's identity (size, ETag, last-modified) is journaled with its result; a
    local file's is not, so only inputs given as URLs are checked.
    """
    if not any(item.identity for item in items):
        return []
    journal = prepared.journal
    changed = [
        index
        for index, entry in list(journal.done.items())
        if index < len(items) and items[index].identity and entry.get("i") != items[index].identity
    ]
    for index in changed:
        journal.forget(index)
    if changed:
        log.warning(
            "%d input(s) changed in storage since they were done and will be redone: %s",
            len(changed),
            ", ".join(items[i].source for i in changed[:10]),
        )
    return changed


def verify_done(prepared: Prepared, items: list[Item], root: str | None) -> list[int]:
    """Forget journaled files whose output is gone or changed (cheap checks: sizes only)."""
    journal = prepared.journal
    stack = prepared.stack
    sink: Sink | None = None if stack is None else stack_sink_class(stack.format)(stack)
    damaged = []
    try:
        for index, entry in list(journal.done.items()):
            receipt = entry.get("r", {})
            if index >= len(items):
                intact = False
            elif sink is not None:
                assert stack is not None
                intact = sink.verify(stack.row_window(index), receipt)
            else:
                assert root is not None
                intact = output_intact(root, items[index].name, receipt)
            if not intact:
                journal.forget(index)
                damaged.append(index)
    finally:
        if sink is not None:
            sink.close()
    if damaged:
        log.warning(
            "%d file(s) listed as done have a missing or changed output and will be redone: %s",
            len(damaged),
            ", ".join(json.dumps(items[i].name) for i in damaged[:10] if i < len(items)),
        )
    return damaged
