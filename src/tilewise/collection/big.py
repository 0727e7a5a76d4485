"""Files too large to process whole: each goes through the tiled runner, one after another.

A worker that opens a file over the tiling threshold answers ``large``
without decoding it; once the small files are done, the main process runs
:func:`tilewise.api.run` on each such file with the same ops — its output is
bit-identical to processing the whole image. ``tilewise run``'s own journal
(``.NAME.journal`` beside the output) makes these runs resumable too.
"""

from __future__ import annotations

import os
from typing import Any

from tilewise import io
from tilewise.collection.collect import Item
from tilewise.collection.write import safe_parent
from tilewise.errors import PipelineError, TilewiseError
from tilewise.pipeline import Pipeline
from tilewise.runner.georef import GEOREF_FORMATS

__all__ = ["run_tiled", "why_not_tiled"]

_TILED_FORMATS = ("tiff", "zarr", "npy")


def why_not_tiled(pipeline: Pipeline, fmt: str) -> str | None:
    """Why a file of output format ``fmt`` cannot go through the tiled runner (None if it can)."""
    if fmt not in _TILED_FORMATS:
        return (
            f"tiled runs write TIFF, Zarr or .npy, not {fmt.upper()}; add --format tiff, or "
            "raise --tile-above to process it whole"
        )
    try:
        pipeline.check_tileable()
    except PipelineError as err:
        return f"{err}; raise --tile-above to process the file whole (it must fit in memory)"
    return None


def run_tiled(
    item: Item,
    root: str,
    pipeline: Pipeline,
    options: dict[str, Any],
    limits: tuple[int, int],
    settings: dict[str, Any],
) -> tuple[str, str | None]:
    """Run one file through :func:`tilewise.api.run` into the folder ``root``.

    ``options`` are the batch's creation options for the file's output format.

    Returns
    -------
    tuple
        The output path, and the cause of the failure (None when every tile is done).
    """
    from tilewise import api

    try:
        parent = safe_parent(root, item.name)
        target = os.path.join(parent, item.name.rsplit("/", 1)[-1])
        result = api.run(
            item.source,
            target,
            pipeline,
            overwrite=True,
            resume=True,
            creation_options=options,
            max_pixels=limits[0],
            max_whole_pixels=limits[1],
            progress=False,
            drop_georef=io.output_format(target) not in GEOREF_FORMATS,
            **settings,
        )
    except (TilewiseError, OSError) as err:
        return "", f"tiled run failed: {err}"
    if not result.ok:
        first = result.failures[0] if result.failures else None
        return target, f"tiled run: {result.failed} of {result.total} tile(s) failed" + (
            f"; first, tile {first.tile}: {first.cause}" if first else ""
        )
    return target, None
