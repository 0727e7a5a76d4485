"""What a pipeline does to an image's georeferencing: the output's :class:`~tilewise.io.Georef`.

Each op maps the georeferencing that reaches it:

* an op that scales the image by an integer factor (``resize:scale=0.5``) scales the
  transform exactly: pixel size times ``down / up``, same origin (:meth:`Georef.scaled`);
* any other op that changes the shape moves the transform to where its output's pixel
  grid lies on its input's (:meth:`BoundOp.pixel_grid
  <tilewise.ops.base.BoundOp.pixel_grid>`): ``crop`` moves the origin to the first
  pixel kept, ``pad`` to the new corner outside the old image, ``resize:shape=HxW``
  stretches each axis by old / new size, ``resize:scale=F`` makes pixels ``1/F`` as
  large. An op that changes the shape without saying how is refused on a
  georeferenced image rather than written with a transform that no longer fits;
* ``bands:...`` selects the per-band descriptions, colour interpretations, scales
  and offsets in its order; any other op that changes the band count (``expr``,
  ``grayscale``) leaves the new bands without them;
* the nodata value is the pipeline's output nodata value: ``--dst-nodata``, or
  the input's as the ops map it (:mod:`tilewise.ops.nodata`: a filter keeps it,
  ``db`` sends it to NaN, ``invert`` where it sends pixels); none when the
  pipeline leaves no nodata out (the input has none, or ``--nodata none``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tilewise.errors import PipelineError
from tilewise.io.georef import Georef
from tilewise.ops.bandmath import band_list
from tilewise.ops.base import BoundOp, PixelGrid

__all__ = ["map_georef"]


def map_georef(
    ops: tuple[BoundOp, ...],
    georef: Georef,
    dtype: np.dtype[Any],
    *,
    nodata: float | None,
    shape: tuple[int, int],
) -> Georef:
    """The georeferencing of the output of ``ops`` run on an image with ``georef`` and ``dtype``.

    ``nodata`` is the output's nodata value (None: it has none); ``shape`` is the
    input's ``(height, width)``.

    Raises
    ------
    PipelineError
        An op changes the image's shape without saying where its pixels lie, and
        the image has a transform.
    """
    for op in ops:
        bands = georef.band_count
        out_bands = op.out_bands(bands)
        scale = op.scale
        grid = op.pixel_grid(shape)
        if scale not in (None, (1, 1)):
            georef = georef.scaled(*scale)
        elif op.definition.changes_shape:
            georef = _placed(op, georef, grid)
        if grid is not None:
            shape = grid.shape
        if op.name == "bands":
            georef = _select(georef, band_list(str(op.params["bands"])))
        elif out_bands != bands:
            georef = replace(
                georef, band_count=out_bands, descriptions=(), colorinterp=(), scales=(), offsets=()
            )
        dtype = op.out_dtype(dtype)
    return replace(georef, nodata=nodata)


def _placed(op: BoundOp, georef: Georef, grid: PixelGrid | None) -> Georef:
    if georef.transform is None:
        return georef
    if grid is None:
        raise PipelineError(
            f"{op.name} changes the image's size without saying where its pixels lie, so the "
            "output's georeferencing cannot be kept; give the op a pixel_grid rule, or drop "
            "the georeferencing (--drop-georef, or an output format without it such as .npy)"
        )
    return replace(
        georef, transform=georef.transform.placed(grid.row, grid.col, grid.row_step, grid.col_step)
    )


def _select(georef: Georef, wanted: tuple[int, ...]) -> Georef:
    def pick(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[b - 1] for b in wanted) if values else ()

    colorinterp = pick(georef.colorinterp)
    if colorinterp and colorinterp != ("red", "green", "blue")[: len(colorinterp)]:
        # a band that was red is not red in another position, nor gray alone
        colorinterp = ("gray", *("undefined",) * (len(wanted) - 1))
    return replace(
        georef,
        band_count=len(wanted),
        descriptions=pick(georef.descriptions),
        colorinterp=colorinterp,
        scales=pick(georef.scales),
        offsets=pick(georef.offsets),
    )
