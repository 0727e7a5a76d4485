"""What a pipeline does to an image's georeferencing: the output's :class:`~tilewise.io.Georef`.

Each op maps the georeferencing that reaches it:

* an op that scales the image (``resize:scale=0.5``) scales the transform exactly:
  pixel size times ``down / up``, same origin (:meth:`Georef.scaled`);
* ``bands:...`` selects the per-band descriptions, colour interpretations, scales
  and offsets in its order; any other op that changes the band count (``expr``,
  ``grayscale``) leaves the new bands without them;
* the nodata value goes where the op sends a region of nodata: the op is applied to
  a constant image of the nodata value and the centre pixel is the new nodata value
  (``db`` sends 0 to NaN, ``to_dtype:dtype=uint8`` sends NaN to 0, ``expr`` sends it
  through the expression; a filter keeps it). When the bands disagree, or the output
  is boolean (a mask has no room for a "missing" value), the output has no nodata value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from tilewise.errors import OpError, TilewiseError
from tilewise.io.georef import Georef
from tilewise.ops.bandmath import band_list
from tilewise.ops.base import BoundOp

__all__ = ["map_georef"]


def map_georef(ops: tuple[BoundOp, ...], georef: Georef, dtype: np.dtype[Any]) -> Georef:
    """The georeferencing of the output of ``ops`` run on an image with ``georef`` and ``dtype``."""
    for op in ops:
        bands = georef.band_count
        out_bands = op.out_bands(bands)
        out_dtype = op.out_dtype(dtype)
        up, down = op.scale or (1, 1)
        if (up, down) != (1, 1):
            georef = georef.scaled(up, down)
        if georef.nodata is not None:
            georef = replace(georef, nodata=_nodata_after(op, georef.nodata, dtype, bands))
            if out_dtype == np.dtype(bool):
                georef = replace(georef, nodata=None)
        if op.name == "bands":
            georef = _select(georef, band_list(str(op.params["bands"])))
        elif out_bands != bands:
            georef = replace(
                georef, band_count=out_bands, descriptions=(), colorinterp=(), scales=(), offsets=()
            )
        dtype = out_dtype
    return georef


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


def _nodata_after(op: BoundOp, nodata: float, dtype: np.dtype[Any], bands: int) -> float | None:
    """Where ``op`` sends a region of ``nodata``: the centre of the op run on a constant image."""
    side = 2 * op.halo + 1
    if (op.scale or (1, 1)) != (1, 1):
        side = max(side, 4 * side)  # a resize needs room for its own kernel and factor
    shape = (side, side) if bands == 1 else (side, side, bands)
    with np.errstate(all="ignore"):
        try:
            value = np.array(nodata).astype(dtype)
        except (ValueError, OverflowError):
            return None
    if not _same(float(value), nodata):
        return None  # the nodata value does not fit the image's dtype: no pixel holds it
    image = np.full(shape, value, dtype=dtype)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = np.asarray(op(image))
    except (OpError, TilewiseError, ValueError):
        return None
    centre = out[out.shape[0] // 2, out.shape[1] // 2]
    values = {float(v) for v in np.atleast_1d(centre)}
    if len(values) != 1 and not all(math.isnan(v) for v in values):
        return None
    return values.pop()


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
