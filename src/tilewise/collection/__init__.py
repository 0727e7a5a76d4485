"""Image collections: one pipeline over many files, into a folder tree or one stacked array.

:func:`batch` is the Python face of ``tilewise batch`` (see docs/batch.md);
:func:`measure_files` measures every file into one table (``tilewise measure``
with several inputs, see docs/measure.md). The
names below load on first use, so a worker process that imports only
:mod:`tilewise.collection.work` does not load the main process's machinery.
"""

from __future__ import annotations

from tilewise._lazy import attach

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing

_EXPORTS = {
    "BatchReport": "tilewise.collection.report",
    "DEFAULT_FILES_PER_TASK": "tilewise.collection.run",
    "DEFAULT_TILE_ABOVE": "tilewise.collection.run",
    "FileRecord": "tilewise.collection.report",
    "batch": "tilewise.collection.run",
    "measure_files": "tilewise.collection.measure",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = attach(__name__, _EXPORTS)


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from tilewise.collection.measure import measure_files as measure_files
    from tilewise.collection.report import BatchReport as BatchReport
    from tilewise.collection.report import FileRecord as FileRecord
    from tilewise.collection.run import DEFAULT_FILES_PER_TASK as DEFAULT_FILES_PER_TASK
    from tilewise.collection.run import DEFAULT_TILE_ABOVE as DEFAULT_TILE_ABOVE
    from tilewise.collection.run import batch as batch
