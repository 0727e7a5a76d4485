"""Writing one whole output image into the output folder (worker side).

The image itself is written by :func:`tilewise.io.write_image` (under a hidden
temporary name, renamed into place). This module keeps every write inside the
output folder: folders are created one component at a time, and a component
that is a symlink leading outside the output folder is refused, so no write can
escape it (a target that is itself a symlink is replaced, not followed).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from tilewise import io
from tilewise.errors import OutputError
from tilewise.io.georef import Georef

__all__ = ["output_intact", "safe_parent", "write_output"]

Array = npt.NDArray[Any]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_parent(root: str, name: str) -> str:
    """Create (if needed) the folder of output ``name`` under ``root``; return its path.

    ``root`` must be a real path (symlinks resolved). Raises :class:`OutputError`
    if a component exists as a symlink leading outside ``root`` or as a file.
    """
    current = root
    for part in name.split("/")[:-1]:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
                os.mkdir(current)
            info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(current)
            if not _inside(real, root) or not os.path.isdir(real):
                raise OutputError(
                    f"{current}: a symlink to {real}, outside the output folder {root}; "
                    "refusing to write through it (remove the link, or choose another --out)"
                )
        elif not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{current}: exists and is not a folder; cannot write {name} there")
    return current


def write_output(
    root: str,
    name: str,
    fmt: str,
    array: Array,
    options: Mapping[str, Any],
    georef: Georef | None = None,
) -> dict[str, Any]:
    """Write ``array`` as ``root/name`` in ``fmt``, atomically; return a receipt (its size).

    ``options`` are the creation options of ``fmt``
    (:func:`tilewise.io.parse_creation_options`); ``georef`` goes to TIFF and Zarr outputs.
    """
    parent = safe_parent(root, name)
    target = os.path.join(parent, name.rsplit("/", 1)[-1])
    return io.write_image(target, fmt, array, options, georef)


def output_intact(root: str, name: str, receipt: Mapping[str, Any]) -> bool:
    """Whether the output a journal lists as written is still there with its size."""
    return io.image_intact(os.path.join(root, *name.split("/")), receipt)
