"""Image collections: one pipeline over many files, into a folder tree or one stacked array.

:func:`batch` is the Python face of ``tilewise batch`` (see docs/batch.md).
"""

from tilewise.batch.report import BatchReport, FileRecord
from tilewise.batch.run import DEFAULT_FILES_PER_TASK, DEFAULT_TILE_ABOVE, batch

__all__ = ["DEFAULT_FILES_PER_TASK", "DEFAULT_TILE_ABOVE", "BatchReport", "FileRecord", "batch"]
