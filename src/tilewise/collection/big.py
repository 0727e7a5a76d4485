"""Files too large to process whole: each goes through the tiled runner, one after another.

A worker that opens a file over the tiling threshold answers ``large``
without decoding it; once the small files are done, the main process runs
:func:`tilewise.api.run` on each such file with the same ops — its output is
bit-identical to processing the whole image. ``tilewise run``'s own journal
(``.NAME.journal`` beside the output) makes these runs resumable too.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from tilewise import io
from tilewise.collection.collect import output_format
from tilewise.collection.report import FileRecord
from tilewise.collection.write import safe_parent
from tilewise.errors import PipelineError, TilewiseError
from tilewise.runner.journal import Journal
from tilewise.runner.progress import Progress

if TYPE_CHECKING:
    from tilewise.collection.run import _Batch

__all__ = ["run_large"]

log = logging.getLogger(__name__)

_TILED_FORMATS = ("tiff", "zarr", "npy")


def _why_not(state: _Batch, fmt: str) -> str | None:
    if fmt not in _TILED_FORMATS:
        return (
            f"tiled runs write TIFF, Zarr or .npy, not {fmt.upper()}; add --format tiff, or "
            "raise --tile-above to process it whole"
        )
    try:
        state.pipeline.check_tileable()
    except PipelineError as err:
        return f"{err}; raise --tile-above to process the file whole (it must fit in memory)"
    return None


def run_large(state: _Batch, journal: Journal, bar: Progress, settings: dict[str, Any]) -> None:
    """Run each file the workers found over the threshold through the tiled runner."""
    from tilewise import api

    assert state.root is not None
    for index, shape in state.large:
        item = state.items[index]
        rows, cols = shape[:2]
        fmt = output_format(item.name, None)
        reason = _why_not(state, fmt)
        if reason is not None:
            state.fail(
                FileRecord(
                    index,
                    item.source,
                    f"{rows} x {cols} = {rows * cols:,} pixels is over the tiling threshold "
                    f"({state.tile_above:,}) but {reason}",
                    "input",
                ),
                bar,
            )
            continue
        log.info("%s: %d x %d pixels, processing it tile by tile", item.source, rows, cols)
        try:
            parent = safe_parent(state.root, item.name)
            target = os.path.join(parent, item.name.rsplit("/", 1)[-1])
            result = api.run(
                item.source,
                target,
                state.pipeline,
                overwrite=True,
                resume=True,
                creation_options=state.options[fmt],
                max_pixels=state.limits[0],
                max_whole_pixels=state.limits[1],
                progress=False,
                **settings,
            )
        except (TilewiseError, OSError) as err:
            state.fail(FileRecord(index, item.source, f"tiled run failed: {err}", "exception"), bar)
            continue
        if not result.ok:
            first = result.failures[0] if result.failures else None
            cause = f"tiled run: {result.failed} of {result.total} tile(s) failed" + (
                f"; first, tile {first.tile}: {first.cause}" if first else ""
            )
            state.fail(FileRecord(index, item.source, cause, "exception"), bar)
            continue
        journal.record(index, {"r": {"size": io.stored_size(target)}})
        state.report.done += 1
        state.report.pixels += rows * cols
        state.report.tiled.append(item.source)
        bar.advance(rows * cols)
