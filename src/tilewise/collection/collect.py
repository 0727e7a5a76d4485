"""Inputs to a list of files, and each file's output name inside the output folder.

An INPUT is a file, a folder (searched recursively), a glob pattern, or
``@LIST`` (a text file with one path per line). Every file gets a *name*: a
relative POSIX path under which its output is written in the output folder.

* a file: its own file name;
* a folder: the path below that folder (hidden entries and files whose
  extension is not an image's are skipped; a Zarr array is one input);
* a glob: the path below the pattern's fixed leading folder;
* ``@LIST``: relative lines are taken from the list's folder; names are the
  paths below the deepest folder common to every line, so ``../x`` and
  absolute paths are accepted as *inputs* but can never name an output
  outside the output folder.
* a URL (``s3://``, ``https://``) or a list of URLs: the same rules over the keys of
  object storage (:mod:`tilewise.collection.remote`).

Names never contain ``..``, are never absolute, and are checked again when
written (:mod:`tilewise.collection.write`).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from tilewise.errors import UsageError
from tilewise.io import FORMATS, format_for_suffix, is_url

__all__ = [
    "IMAGE_SUFFIXES",
    "Item",
    "check_name",
    "collect",
    "is_zarr",
    "output_name",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".png", ".jpg", ".jpeg", ".npy")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Item:
    """One input file: the absolute path (or URL) to read and its relative output name.

    ``identity`` tells one version of an object in storage from another (size, ETag,
    last-modified, from its listing or HEAD); empty for a local file.
    """

    source: str
    name: str
    identity: str = ""


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe relative output path, else raise :class:`UsageError`.

    >>> check_name("a/b.tif")
    'a/b.tif'
    >>> check_name("../x.tif")
    Traceback (most recent call last):
    ...
    tilewise.errors.UsageError: output name '../x.tif' would leave the output folder ...
    """
    parts = name.split("/")
    if (
        not name
        or "\x00" in name
        or name.startswith("/")
        or (os.sep != "/" and "\\" in name)  # a separator there; on POSIX a plain character
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UsageError(
            f"output name {name!r} would leave the output folder or is not a plain relative "
            "path; outputs are named by their path below the input folder"
        )
    return name


def output_format(name: str, fmt: str | None) -> str:
    """The format an output is written in: ``fmt``, or the one its input's extension names."""
    if fmt is not None:
        return fmt
    return format_for_suffix(PurePosixPath(name).suffix) or "tiff"


def output_name(name: str, fmt: str | None) -> str:
    """The output's relative path: the input's, with the extension of ``fmt`` if given.

    An input whose extension is not an image's keeps its name plus ``.tif``.

    >>> output_name("a/b.png", None), output_name("a/b.png", "tiff"), output_name("c.dat", None)
    ('a/b.png', 'a/b.tif', 'c.dat.tif')
    """
    path = PurePosixPath(name)
    known = format_for_suffix(path.suffix) is not None
    if fmt is None:
        return name if known else f"{name}.tif"
    stem = path.with_suffix("") if known else path
    return f"{stem}{FORMATS[fmt].extensions[0]}"


def is_zarr(path: str) -> bool:
    """Whether the folder ``path`` is a Zarr array (v3 or v2)."""
    return os.path.isfile(os.path.join(path, "zarr.json")) or os.path.isfile(
        os.path.join(path, ".zarray")
    )


def _relative(path: str, root: str) -> str:
    """``path`` below ``root`` as a POSIX path (both absolute and normalized)."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    relative = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return relative.replace(os.sep, "/") if os.sep != "/" else relative


def _walk(top: str, exclude: frozenset[str]) -> Iterator[str]:
    """Image files (and Zarr arrays) under ``top``, in sorted order, skipping hidden entries."""
    skipped = 0
    for root, dirs, files in os.walk(top):
        kept = []
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if d.startswith(".") or os.path.realpath(full) in exclude:
                continue
            if is_zarr(full):
                files.append(d)
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            full = os.path.join(root, name)
            if name.startswith(".") or os.path.realpath(full) in exclude:
                continue
            if name.lower().endswith((*IMAGE_SUFFIXES, ".zarr")) or is_zarr(full):
                yield full
            else:
                skipped += 1
    if skipped:
        log.info("%s: skipped %d file(s) whose extension is not an image's", top, skipped)


def _glob_root(pattern: str) -> str:
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) if fixed and fixed != [""] else (os.sep if fixed else ".")


def _from_list(list_path: str) -> list[Item]:
    try:
        with open(list_path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{list_path}: cannot read the list of inputs: {err}") from err
    base = os.path.dirname(os.path.abspath(list_path))
    entries = [e for e in (line.strip() for line in lines) if e and not e.startswith("#")]
    if not entries:
        raise UsageError(f"{list_path}: the list of inputs is empty")
    urls = [e for e in entries if is_url(e)]
    if urls:
        if len(urls) != len(entries):
            raise UsageError(
                f"{list_path}: the list mixes URLs and local paths; put them in two lists "
                "(outputs are named below the folder common to a list's lines)"
            )
        from tilewise.collection.remote import from_url_lines

        return from_url_lines(list_path, urls)
    paths = [os.path.normpath(os.path.join(base, entry)) for entry in entries]
    root = os.path.commonpath([os.path.dirname(p) for p in paths])
    return [Item(p, _relative(p, root)) for p in paths]


def _expand(argument: str, exclude: frozenset[str]) -> list[Item]:
    if is_url(argument):
        from tilewise.collection.remote import expand_url

        return expand_url(argument)
    if argument.startswith("@"):
        return _from_list(argument[1:])
    path = os.path.abspath(argument)
    if os.path.isdir(path) and not is_zarr(path):
        found = [Item(f, _relative(f, path)) for f in _walk(path, exclude)]
        if not found:
            raise UsageError(f"{argument}: no image files found in this folder")
        return found
    if os.path.exists(path):
        return [Item(path, os.path.basename(path))]
    if _GLOB_CHARS & set(argument):
        matches = sorted(glob.glob(argument, recursive=True))
        root = os.path.abspath(_glob_root(argument))
        items = []
        for match in matches:
            full = os.path.abspath(match)
            if os.path.isdir(full) and not is_zarr(full):
                continue
            if os.path.realpath(full) not in exclude:
                items.append(Item(full, _relative(full, root)))
        if not items:
            raise UsageError(f"{argument}: the pattern matches no files")
        return items
    raise UsageError(f"{argument}: no such file or directory")


def collect(inputs: Iterable[str], *, exclude: Sequence[str] = ()) -> list[Item]:
    """Expand INPUT arguments into files, in order (arguments in turn; folders sorted).

    ``exclude`` lists paths never taken as inputs (the output folder or stack).
    """
    excluded = frozenset(os.path.realpath(p) for p in exclude)
    items: list[Item] = []
    for argument in inputs:
        for item in _expand(os.fspath(argument), excluded):
            check_name(item.name)
            items.append(item)
    if not items:
        raise UsageError("no inputs given; name files, folders, glob patterns or @LIST files")
    return items


def unique_outputs(items: Sequence[Item], fmt: str | None) -> list[Item]:
    """Map each item to its output name; drop repeats of one file; refuse two files on one name."""
    seen: dict[str, Item] = {}
    out = []
    for item in items:
        name = check_name(output_name(item.name, fmt))
        key = name.lower() if os.path.normcase("A") == "a" else name
        other = seen.get(key)
        if other is not None:
            if other.source == item.source:
                log.warning("%s is listed more than once; processing it once", item.source)
                continue
            raise UsageError(
                f"{other.source} and {item.source} would both be written to {name}; pass their "
                "common parent folder instead, or give them different names"
            )
        seen[key] = item
        out.append(Item(item.source, name, item.identity))
    return out
