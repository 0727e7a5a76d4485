"""An input's identity for a resume: size and mtime, plus a hashed sample of its bytes.

Size and mtime alone let a resume mix tiles of two different images when a file is
rewritten with the same size and its mtime put back (``cp -p``, ``rsync -t``, ``touch
-r``, a tool that restores times). So the fingerprint also holds a BLAKE2 hash of a
fixed sample of the content: the first 64 KiB (the header and, for most files, the
first image data) and 4 KiB at 32 evenly spaced offsets through the rest, the last
block included — 192 KiB read at most, whatever the file's size. For a directory
(Zarr) the sample is every file's relative name and size, the whole of its small
metadata files, and the first and last 4 KiB of 32 evenly chosen other files.

What it catches: a different image of the same size (every byte of a compressed
file changes; an uncompressed file changes in the sampled blocks), a re-encoded
or re-saved file, a change of the header. What it does not: an edit of a few
pixels of an uncompressed file that misses every sampled block (in a 1 GB file
the sample covers 0.02% of it) — such an edit is as invisible to this check as to
size and mtime; only a full hash would see it, at the cost of reading the whole
input before every run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import blake2b

__all__ = ["content_sample"]

_HEAD = 64 * 1024
_BLOCK = 4 * 1024
_BLOCKS = 32
#: Files of a directory store read whole (metadata), when no larger than this.
_METADATA = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


def _spaced(count: int, start: int, stop: int, size: int) -> list[int]:
    """``count`` offsets of blocks of ``size`` from ``start`` to ``stop``, evenly spaced, the
    last ending at ``stop``.

    >>> _spaced(3, 0, 100, 10)
    [0, 45, 90]
    """
    last = max(start, stop - size)
    if count == 1 or last == start:
        return [start]
    return [start + (last - start) * k // (count - 1) for k in range(count)]


def _sample_file(digest: blake2b, path: Path, size: int) -> None:
    with open(path, "rb") as fh:
        digest.update(fh.read(_HEAD))
        if size > _HEAD:
            for offset in _spaced(_BLOCKS, _HEAD, size, _BLOCK):
                fh.seek(offset)
                digest.update(fh.read(_BLOCK))


def content_sample(path: Path) -> str:
    """A hash of a fixed sample of ``path``'s bytes (a file, or every file of a directory).

    The same content always gives the same hash; reading it costs at most
    ~200 KB for a file, ~300 KB for a directory, plus listing the directory.
    """
    import hashlib  # only a resume or a plan reads it: the workers' start-up leaves it out

    digest = hashlib.blake2b(digest_size=16)
    if not path.is_dir():
        _sample_file(digest, path, path.stat().st_size)
        return digest.hexdigest()
    files: list[tuple[str, int]] = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            files.append((os.path.relpath(full, path), os.stat(full).st_size))
    data: list[tuple[str, int]] = []
    for name, size in files:
        digest.update(f"{name}\0{size}\0".encode())
        if os.path.basename(name) in _METADATA and size <= _HEAD:
            digest.update((path / name).read_bytes())
        else:
            data.append((name, size))
    if data:
        picks = sorted(set(_spaced(min(_BLOCKS, len(data)), 0, len(data), 1)))
        for index in picks:
            name, size = data[index]
            with open(path / name, "rb") as fh:
                digest.update(fh.read(_BLOCK))
                if size > _BLOCK:
                    fh.seek(size - _BLOCK)
                    digest.update(fh.read(_BLOCK))
    return digest.hexdigest()
