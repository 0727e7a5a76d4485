"""What a pipeline does to an image's georeferencing: the output's :class:`~tilewise.io.Georef`.

Each op maps the georeferencing that reaches it:

* an op that scales the image (``resize:scale=0.5``) scales the transform exactly:
  pixel size times ``down / up``, same origin (:meth:`Georef.scaled`);
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

from tilewise.io.georef import Georef
from tilewise.ops.bandmath import band_list
from tilewise.ops.base import BoundOp

__all__ = ["map_georef"]


def map_georef(
    ops: tuple[BoundOp, ...], georef: Georef, dtype: np.dtype[Any], *, nodata: float | None
) -> Georef:
    """The georeferencing of the output of ``ops`` run on an image with ``georef`` and ``dtype``.

    ``nodata`` is the output's nodata value (None: it has none).
    """
    for op in ops:
        bands = georef.band_count
        out_bands = op.out_bands(bands)
        up, down = op.scale or (1, 1)
        if (up, down) != (1, 1):
            georef = georef.scaled(up, down)
        if op.name == "bands":
            georef = _select(georef, band_list(str(op.params["bands"])))
        elif out_bands != bands:
            georef = replace(
                georef, band_count=out_bands, descriptions=(), colorinterp=(), scales=(), offsets=()
            )
        dtype = op.out_dtype(dtype)
    return replace(georef, nodata=nodata)


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
