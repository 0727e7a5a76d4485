"""The georeferencing a run gives its output, decided before any tile runs.

The input's :class:`~tilewise.io.Georef` goes through the pipeline
(:meth:`~tilewise.Pipeline.out_georef`) to the output. TIFF outputs write it as
GeoTIFF tags and Zarr outputs as attributes; a ``.npy`` holds pixels only, so a
georeferenced input to ``.npy`` is refused unless the user drops the
georeferencing on purpose (``--drop-georef``): a map position lost silently is a
wrong output.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tilewise.errors import UnsupportedFormatError, UsageError
from tilewise.io import Source
from tilewise.io.georef import Georef
from tilewise.ops.nodata import fits
from tilewise.pipeline import Pipeline

__all__ = ["GEOREF_FORMATS", "NodataOption", "input_georef", "input_nodata", "output_georef"]

#: Output formats that hold georeferencing.
GEOREF_FORMATS = ("tiff", "cog", "zarr")


def input_georef(source: Source, *, drop: bool) -> Georef | None:
    """The input's georeferencing; None for a plain image, or when it is dropped.

    Raises
    ------
    UnsupportedFormatError
        The input is georeferenced but its georeferencing cannot be read (rasterio
        is not installed): the output would lose it without a word.
    """
    if drop:
        return None
    try:
        georef = source.georef
    except UnsupportedFormatError as err:
        raise UnsupportedFormatError(
            f"{err}; to process the pixels without the georeferencing, pass --drop-georef"
        ) from err
    return georef if georef is not None and _carries(georef) else None


#: ``"file"``: the input's nodata value; ``"none"``: no pixel is nodata; a number: that one.
NodataOption = float | Literal["file", "none"]


def input_nodata(source: Source, option: NodataOption) -> float | None:
    """The nodata value the ops leave out: the input's, or the one ``option`` gives.

    Raises
    ------
    UnsupportedFormatError
        The input may have a nodata value that cannot be read (rasterio is not
        installed): processing it as data would be silently wrong.
    UsageError
        ``option`` is neither a number, ``"file"`` nor ``"none"``.
    """
    if option == "none":
        return None
    if option == "file":
        try:
            georef = source.georef
        except UnsupportedFormatError as err:
            raise UnsupportedFormatError(
                f"{err}; or give its nodata value with --nodata VALUE (--nodata none: none)"
            ) from err
        return None if georef is None else georef.nodata
    if isinstance(option, str):
        raise UsageError(f"--nodata {option!r}: give a number, nan, or none")
    return float(option)


def output_georef(
    pipeline: Pipeline,
    georef: Georef | None,
    dtype: np.dtype[Any],
    bands: int,
    fmt: str,
    dst: Path,
    *,
    shape: tuple[int, int],
    drop: bool,
    dst_nodata: float | None,
) -> Georef | None:
    """The output's georeferencing: the input's mapped by ``pipeline``, nodata replaced.

    ``bands``, ``dtype`` and ``shape`` (height, width) are the input's.

    Raises
    ------
    UsageError
        ``fmt`` cannot hold the georeferencing (``.npy``) and ``drop`` is not
        set, or ``dst_nodata`` does not fit the output's dtype.
    """
    out_dtype = pipeline.out_dtype(dtype)
    out: Georef | None = None
    if georef is not None and not drop:
        out = pipeline.out_georef(georef, dtype, shape)
    if dst_nodata is not None:
        _check_nodata(dst_nodata, out_dtype)
        out = (
            replace(out, nodata=float(dst_nodata))
            if out is not None
            else Georef(band_count=pipeline.out_bands(bands), nodata=float(dst_nodata))
        )
    if out is not None and fmt not in GEOREF_FORMATS:
        what = f"georeferencing ({out.crs or 'a transform'})" if out.is_georeferenced else "nodata"
        raise UsageError(
            f"{dst}: a .{fmt} output cannot hold the input's {what}; write a .tif or .zarr "
            "output, which keep it, or pass --drop-georef to write the pixels alone"
        )
    return out


def _carries(georef: Georef) -> bool:
    """Whether ``georef`` says anything an output should keep."""
    return georef.is_georeferenced or georef.nodata is not None or bool(georef.tags)


def _check_nodata(value: float, dtype: np.dtype[Any]) -> None:
    if not fits(dtype, value):
        raise UsageError(
            f"--dst-nodata {value:g} does not fit the output's {dtype.name} pixels; "
            "give a value the output type holds"
        )
