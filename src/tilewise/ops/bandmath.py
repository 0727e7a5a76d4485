"""Band ops (no halo): ``bands`` selects and reorders bands, ``expr`` computes band math.

Bands are numbered from 1, as in GDAL (``gdal_translate -b 4``, ``gdal_calc.py``).
With nodata (:mod:`tilewise.ops.nodata`), ``bands`` takes each band's nodata
flags with it, and ``expr`` gives nodata where any band it reads is nodata or
where its result is undefined, written as its ``nodata=`` value unless
``--dst-nodata`` says otherwise. Both ops check the band numbers against the
input's band count before any tile runs (their band rules see the parameters).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops.base import OpDefinition, Param, register
from tilewise.ops.expression import Expression

Array = npt.NDArray[Any]


def band_list(text: str) -> tuple[int, ...]:
    """Parse ``"1,3,4"`` into band numbers (1-based; repeats allowed, as GDAL's ``-b``).

    >>> band_list("4,3,2")
    (4, 3, 2)
    """
    try:
        numbers = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise OpError(f"bands: expected band numbers like 1,3,4, got {text!r}") from None
    if not numbers or min(numbers) < 1:
        raise OpError(f"bands: band numbers start at 1 (as GDAL), got {text!r}")
    return numbers


def _check_bands(op_name: str, wanted: tuple[int, ...], count: int) -> None:
    missing = sorted({b for b in wanted if b > count})
    if missing:
        raise OpError(
            f"{op_name}: band {', '.join(f'{b}' for b in missing)} asked for, but the image "
            f"has {count} band(s) (bands are numbered from 1)"
        )


def _band(image: Array, number: int) -> Array:
    return image if image.ndim == 2 else image[..., number - 1]


def select_bands(image: Array, bands: str) -> Array:
    """The bands listed, in that order: ``gdal_translate -b 1 -b 3 -b 4`` for ``bands:1,3,4``.

    One band listed gives a one-band ``(H, W)`` image.
    """
    wanted = band_list(bands)
    count = 1 if image.ndim == 2 else image.shape[2]
    _check_bands("bands", wanted, count)
    if len(wanted) == 1:
        return np.ascontiguousarray(_band(image, wanted[0]))
    return np.stack([_band(image, b) for b in wanted], axis=-1)


def _select_count(count: int, bands: str) -> int:
    wanted = band_list(bands)
    _check_bands("bands", wanted, count)
    return len(wanted)


def _expr_dtype(dtype: str, nodata: float) -> np.dtype[Any]:
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise OpError(f"expr: unknown dtype {dtype!r}; e.g. float32, float64, uint8") from None
    if out.kind not in "uif":
        raise OpError(f"expr: dtype must be an integer or float type, got {out.name}")
    if out.kind in "ui":
        if math.isnan(nodata):
            raise OpError(
                f"expr: dtype={out.name} cannot hold NaN; give nodata=V, the value written "
                "where the expression is undefined (e.g. nodata=0)"
            )
        info = np.iinfo(out)
        if not (info.min <= nodata <= info.max and float(nodata).is_integer()):
            raise OpError(f"expr: nodata={nodata} does not fit in {out.name}")
    return out


def expr(image: Array, expr: str, dtype: str = "float32", nodata: float = math.nan) -> Array:
    """Band math: ``expr:(b4-b3)/(b4+b3)`` (NDVI), bands ``b1``, ``b2``... numbered from 1.

    Evaluated in float64 by a checked syntax-tree walk (never Python ``eval``;
    see :mod:`tilewise.ops.expression` for what an expression may contain), then
    cast to ``dtype`` (float32 unless given). Where the result is undefined —
    division by zero, log of 0 or of a negative, sqrt of a negative, NaN
    inputs, a result too large for float32 — the output is ``nodata``: NaN for
    float types unless ``nodata=`` is given; integer types need ``nodata=``
    and round half to even, clipping to the type's range.

    Equals ``numpy`` evaluating the same expression on the whole image in
    float64, cast to ``dtype`` — exactly (each pixel is computed alone).
    """
    result, undefined = _evaluate(image, expr, dtype, nodata)
    result[undefined] = nodata
    return result


def _evaluate(image: Array, expr: str, dtype: str, nodata: float) -> tuple[Array, Array]:
    """The expression cast to ``dtype``, and where it is undefined."""
    parsed = Expression.parse(expr)
    count = 1 if image.ndim == 2 else image.shape[2]
    _check_bands("expr", parsed.bands, count)
    out_dtype = _expr_dtype(dtype, nodata)
    bands = {b: _band(image, b).astype(np.float64) for b in parsed.bands}
    value = np.broadcast_to(parsed.evaluate(bands), image.shape[:2])
    with np.errstate(all="ignore"):
        if out_dtype.kind == "f":
            result = value.astype(out_dtype)
            undefined = ~np.isfinite(result)
        else:
            info = np.iinfo(out_dtype)
            undefined = ~np.isfinite(value)
            result = np.clip(np.rint(np.where(undefined, 0, value)), info.min, info.max)
            result = result.astype(out_dtype)
    return result, undefined


def expr_masked(
    image: Array, valid: Array, expr: str, dtype: str = "float32", nodata: float = math.nan
) -> tuple[Array, Array]:
    """``expr`` where every band it reads is valid and the result is defined; nodata elsewhere."""
    result, undefined = _evaluate(image, expr, dtype, nodata)
    used = Expression.parse(expr).bands
    flags = np.ones(image.shape[:2], dtype=bool)
    for b in used:
        flags &= _band(valid, b)
    return result, flags & ~undefined


def select_bands_masked(image: Array, valid: Array, bands: str) -> tuple[Array, Array]:
    """``bands``: the flags of the bands selected go with them."""
    return select_bands(image, bands), select_bands(valid, bands)


def _expr_nodata(
    _: float | None, __: Any, ___: Any, nodata: float = math.nan, **____: Any
) -> float:
    """``expr`` writes its ``nodata=`` parameter (NaN by default) where a pixel is nodata."""
    return float(nodata)


def _expr_count(count: int, expr: str, **_: Any) -> int:
    _check_bands("expr", Expression.parse(expr).bands, count)
    return 1


def _expr_out_dtype(_: np.dtype[Any], dtype: str, nodata: float, **__: Any) -> np.dtype[Any]:
    return _expr_dtype(dtype, nodata)


register(
    OpDefinition(
        name="bands",
        func=select_bands,
        bands=_select_count,
        rules_take_params=True,
        params=(Param("bands", str, help="band numbers from 1, in output order, e.g. 1,3,4"),),
        equals="gdal_translate -b 1 -b 3 -b 4 (numpy indexing)",
        summary="select and reorder bands (numbered from 1, as GDAL)",
        masked=select_bands_masked,
    )
)
register(
    OpDefinition(
        name="expr",
        func=expr,
        dtype=_expr_out_dtype,
        bands=_expr_count,
        rules_take_params=True,
        params=(
            Param("expr", str, help="e.g. (b4-b3)/(b4+b3); b1 is the first band"),
            Param("dtype", str, "float32", help="output dtype"),
            Param("nodata", float, math.nan, help="value written where undefined"),
        ),
        equals="the same expression in float64 NumPy on the whole image, cast to dtype",
        summary="band math: + - * / **, comparisons, where, log, sqrt, abs, clip",
        masked=expr_masked,
        nodata_rule=_expr_nodata,
    )
)
