"""Inputs and output of a batch kept apart, so a batch never writes over what it reads.

``batch scans/ --out scans/ --overwrite`` would replace every input with its
result, and an output folder inside an input folder is read back as input by
the next batch. Before any work, an output that *is*, *contains* or (for
``--out``) *lies inside* an input's tree is refused. Paths are compared as
real paths, so a symlinked output folder or input is seen for what it is.
An input's tree is the folder given, or a glob's fixed leading folder; a file
(or a Zarr array) is its own tree, and ``@LIST`` lines are checked one by one. Objects
in storage (URLs) never overlap a local output.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from tilewise.collection.collect import Item, is_zarr
from tilewise.errors import UsageError
from tilewise.io import is_url

__all__ = ["check_apart"]


def _inside(path: str, root: str) -> bool:
    """Whether real path ``path`` is ``root`` or lies below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _fixed_root(pattern: str) -> str:
    """A glob pattern's leading folder without wildcards (``scans/**/*.tif`` → ``scans``)."""
    head = pattern
    while glob.has_magic(head):
        head = os.path.dirname(head)
    return head or "."


def _trees(arguments: Sequence[str]) -> list[tuple[str, str, bool]]:
    """``(argument, real path, is a folder tree)`` for every argument but ``@LIST``."""
    trees = []
    for argument in arguments:
        if argument.startswith("@") or is_url(argument):
            continue
        path = os.path.abspath(argument)
        if os.path.exists(path):
            folder = os.path.isdir(path) and not is_zarr(path)
            trees.append((argument, os.path.realpath(path), folder))
        elif glob.has_magic(argument):
            trees.append((argument, os.path.realpath(_fixed_root(argument)), True))
    return trees


def check_apart(
    arguments: Sequence[str],
    items: Sequence[Item],
    target: Path,
    *,
    folder: bool,
    kind: str | None = None,
) -> None:
    """Refuse an output that is, contains or (``folder``: an ``--out`` tree) lies in an input.

    ``kind`` names the output in the message (default: "output folder" or "stack").

    Raises
    ------
    UsageError
        Naming the output, the input it overlaps and how.
    """
    out = os.path.realpath(target)
    kind = kind or ("output folder" if folder else "stack")
    for argument, tree, is_tree in _trees(arguments):
        if _inside(tree, out):
            how = "is" if tree == out else "contains"
            raise UsageError(
                f"{target}: the {kind} {how} the input {argument}, so tilewise would write over "
                "its own inputs; choose an output outside every input"
            )
        if folder and is_tree and _inside(out, tree):
            raise UsageError(
                f"{target}: the output folder lies inside the input folder {argument}, so its "
                f"results would be read as inputs by the next batch; choose an --out outside "
                f"{argument}"
            )
    if not os.path.exists(out) or (os.path.isdir(out) and _empty(out)):
        return  # nothing lies inside an output that does not exist yet, or is empty
    parents: dict[str, str] = {}
    for item in items:
        if is_url(item.source):
            continue
        parent, name = os.path.split(item.source)
        if parent not in parents:
            parents[parent] = os.path.realpath(parent)
        real = (
            os.path.realpath(item.source)
            if os.path.islink(item.source)
            else os.path.join(parents[parent], name)
        )
        if _inside(real, out):
            how = "is" if real == out else "contains"
            raise UsageError(
                f"{target}: the {kind} {how} the input {item.source}, so tilewise would "
                "write over its own inputs; choose an output outside every input"
            )


def _empty(folder: str) -> bool:
    """Whether ``folder`` holds no entries (its directory iterator closed at once)."""
    with os.scandir(folder) as entries:
        return not any(entries)
