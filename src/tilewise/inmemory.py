"""In-memory tiling: split()/merge() helpers and process() for arrays that fit in RAM."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import GeometryError, UsageError
from tilewise.geometry import Grid, Layout, Tile, parse_tile_shape
from tilewise.pipeline import OpLike, Pipeline, as_pipeline

__all__ = ["Piece", "merge", "process", "split"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Piece:
    """One tile of an in-memory image: its geometry and the pixels of its read window."""

    tile: Tile
    array: Array


def _grid(image: Array, tile: Any, layout: str | Layout, halo: int) -> Grid:
    if image.ndim not in (2, 3):
        raise UsageError(f"expected a (rows, cols) or (rows, cols, bands) array, got {image.shape}")
    return Grid(image.shape[:2], parse_tile_shape(tile), Layout(layout), halo)


def split(
    image: Array, *, tile: Any = 1024, layout: str | Layout = Layout.GRID, halo: int = 0
) -> list[Piece]:
    """Cut ``image`` into tiles, each with ``halo`` extra pixels (clipped at the border).

    The arrays are views of ``image``, not copies.

    >>> import numpy as np
    >>> pieces = split(np.arange(20).reshape(4, 5), tile=2, halo=1)
    >>> len(pieces), pieces[0].array.shape
    (6, (3, 3))
    """
    grid = _grid(image, tile, layout, halo)
    return [Piece(t, image[t.read.slices]) for t in grid]


def merge(pieces: Iterable[Piece] | Iterable[tuple[Tile, Array]]) -> Array:
    """Crop every piece to its tile's core and put the cores together into one image.

    The pieces must cover the image exactly once (as :func:`split` makes them).

    >>> import numpy as np
    >>> image = np.arange(20).reshape(4, 5)
    >>> bool((merge(split(image, tile=3, halo=1)) == image).all())
    True
    """
    items = [p if isinstance(p, Piece) else Piece(*p) for p in pieces]
    if not items:
        raise UsageError("merge() needs at least one piece")
    height = max(p.tile.core.stop_row for p in items)
    width = max(p.tile.core.stop_col for p in items)
    first = items[0].array
    out = np.empty((height, width, *first.shape[2:]), dtype=first.dtype)
    covered = 0
    for piece in items:
        if piece.array.shape[:2] != piece.tile.read.shape:
            raise GeometryError(
                f"{piece.tile}: array is {piece.array.shape[:2]}, its read window is "
                f"{piece.tile.read.shape}"
            )
        out[piece.tile.core.slices] = piece.array[piece.tile.core_in_read.slices]
        covered += piece.tile.core.area
    if covered != height * width:
        raise GeometryError(f"pieces cover {covered} pixels of a {height} x {width} image")
    return out


def process(
    image: Array,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    tile: Any = 1024,
    layout: str | Layout = Layout.GRID,
    workers: int = 1,
    nodata: float | None = None,
    dst_nodata: float | None = None,
) -> Array:
    """Run ``ops`` over an in-memory image tile by tile; equal to running them on the whole image.

    Tiles run on ``workers`` threads in this process (OpenCV and SciPy release
    the GIL). For images that do not fit in memory, use :func:`tilewise.run`.
    With ``nodata``, pixels of that value are missing data the ops leave out,
    written as ``dst_nodata`` (default: ``nodata`` as the ops map it); see
    :meth:`Pipeline.with_nodata`.
    """
    pipeline = as_pipeline(ops)
    if image.ndim not in (2, 3):
        raise UsageError(f"expected a (rows, cols) or (rows, cols, bands) array, got {image.shape}")
    pipeline.check_tileable()
    pipeline.check_input(image.dtype, 1 if image.ndim == 2 else image.shape[2], source="image")
    pipeline = pipeline.with_nodata(nodata, image.dtype, dst_nodata=dst_nodata, source="image")
    stages = pipeline.stage_map(image.shape[:2]) if pipeline.rescales else None
    shape = stages.output_shape if stages is not None else image.shape[:2]
    grid = Grid(shape, parse_tile_shape(tile), Layout(layout),
                halo=0 if stages else pipeline.halo, stages=stages)  # fmt: skip

    def one(t: Tile) -> tuple[Tile, Array]:
        return t, pipeline.apply_tile(image[t.read.slices], t, stages)

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(one, grid))
    else:
        done = [one(t) for t in grid]
    first = done[0][1]
    out = np.empty((*shape, *first.shape[2:]), dtype=first.dtype)
    for t, core in done:
        out[t.core.slices] = core
    return out
