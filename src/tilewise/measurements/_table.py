"""Tables of measurements: a plain dict of equal-length NumPy columns, and writing them.

A table is ``dict[str, numpy.ndarray]``, one 1-D array per column, all of one
length. pandas is optional: :func:`to_frame` builds a DataFrame only when asked
(``pip install 'tilewise[measure]'``). CSV is always available; Parquet needs
pyarrow (the same extra); GeoPackage needs geopandas (the ``geo`` extra).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OutputError, UsageError

__all__ = [
    "GEO_SUFFIXES",
    "TABLE_SUFFIXES",
    "Table",
    "check_table_path",
    "concat",
    "empty",
    "take",
    "to_frame",
    "write_table",
]

Table = dict[str, npt.NDArray[Any]]

_INSTALL = "pip install 'tilewise[measure]'"
_INSTALL_GEO = "pip install 'tilewise[geo]'"


def empty(columns: Mapping[str, npt.DTypeLike]) -> Table:
    """A table with no rows and the given column dtypes.

    >>> empty({"row": np.int64})["row"].shape
    (0,)
    """
    return {name: np.empty(0, dtype=dtype) for name, dtype in columns.items()}


def _length(table: Mapping[str, npt.NDArray[Any]]) -> int:
    lengths = {len(col) for col in table.values()}
    if len(lengths) > 1:
        raise UsageError(f"table columns differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def concat(tables: Sequence[Mapping[str, npt.NDArray[Any]]]) -> Table:
    """Rows of ``tables`` one after another; every table must have the same columns.

    >>> t = concat([{"a": np.array([1])}, {"a": np.array([2, 3])}])
    >>> t["a"].tolist()
    [1, 2, 3]
    """
    if not tables:
        raise UsageError("concat() needs at least one table")
    names = list(tables[0])
    for t in tables[1:]:
        if list(t) != names:
            raise UsageError(f"tables have different columns: {names} and {list(t)}")
    return {name: np.concatenate([t[name] for t in tables]) for name in names}


def take(table: Mapping[str, npt.NDArray[Any]], index: npt.NDArray[Any]) -> Table:
    """The rows ``index`` (an integer or boolean array) of ``table``."""
    return {name: col[index] for name, col in table.items()}


def to_frame(table: Mapping[str, npt.NDArray[Any]]) -> Any:
    """The table as a pandas DataFrame (pandas is an optional dependency)."""
    try:
        import pandas as pd
    except ImportError as err:
        raise UsageError(f"a DataFrame needs pandas: {_INSTALL}") from err
    _length(table)
    return pd.DataFrame({name: np.asarray(col) for name, col in table.items()})


#: The table formats, by suffix.
TABLE_SUFFIXES = (".csv", ".parquet", ".geojson", ".gpkg")
#: The formats that hold points in map coordinates (a georeferenced input only).
GEO_SUFFIXES = (".geojson", ".gpkg")


def check_table_path(path: str | os.PathLike[str]) -> str:
    """The table's suffix, or a :class:`UsageError` before any work.

    Refuses an unknown suffix, and a format whose extra is not installed
    (``.parquet`` needs pyarrow, ``.gpkg`` geopandas).
    """
    if os.fspath(path).lower().startswith(("s3://", "http://", "https://")):  # io.is_url
        raise UsageError(
            f"{os.fspath(path)}: tables are written to a local file, not to object storage; "
            "give a local path (the input may be a URL)"
        )
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(
            f"{path}: a table is written as .csv, .parquet, .geojson or .gpkg (points of a "
            f"georeferenced input), not {suffix or 'a name without a suffix'!r}"
        )
    if suffix == ".parquet":
        _need("pyarrow", f"{path}: writing .parquet needs pyarrow: {_INSTALL}")
    elif suffix == ".gpkg":
        _need("geopandas", f"{path}: writing a GeoPackage needs geopandas: {_INSTALL_GEO}")
    return suffix


def _need(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(message)


def write_table(
    table: Mapping[str, npt.NDArray[Any]], path: str | os.PathLike[str], *, crs: str | None = None
) -> Path:
    """Write ``table`` to ``path``: ``.csv`` always, ``.parquet`` with pyarrow.

    ``.geojson`` writes one point per row at its ``x``, ``y`` columns (a
    georeferenced input's tables have them), in ``crs``; ``.gpkg`` (geopandas)
    writes the same points as a GeoPackage layer.

    The file is written under a temporary name and renamed into place, so a
    failed write leaves no partial table.
    """
    path = Path(path)
    suffix = check_table_path(path)
    if suffix in GEO_SUFFIXES and not ("x" in table and "y" in table):
        raise UsageError(
            f"{path}: map points need map coordinates; this table has none (its input "
            "is not georeferenced, or its rows are not objects): write .csv or .parquet"
        )
    rows = _length(table)
    tmp = path.with_name(f".{path.name}.partial{suffix}")  # GDAL goes by the suffix
    try:
        if suffix == ".csv":
            _write_csv(table, rows, tmp)
        elif suffix == ".geojson":
            from tilewise.measurements._geo import write_geojson

            write_geojson(table, tmp, crs)
        elif suffix == ".gpkg":
            from tilewise.measurements._geo import write_geopackage

            tmp.unlink(missing_ok=True)  # GDAL would add a layer to an old file
            write_geopackage(table, tmp, crs, layer=path.stem)
        else:
            _write_parquet(table, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the table: {err}") from err
    return path


def _write_csv(table: Mapping[str, npt.NDArray[Any]], rows: int, path: Path) -> None:
    columns = [np.asarray(col).tolist() for col in table.values()]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(table))
        for i in range(rows):
            writer.writerow([col[i] for col in columns])


def _write_parquet(table: Mapping[str, npt.NDArray[Any]], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise UsageError(f"writing .parquet needs pyarrow: {_INSTALL}") from err
    arrays = [_arrow_column(pa, np.asarray(col)) for col in table.values()]
    pq.write_table(pa.Table.from_arrays(arrays, names=list(table)), path)


def _arrow_column(pa: Any, column: npt.NDArray[Any]) -> Any:
    """One column as an Arrow array, built from its buffers.

    ``pa.array`` would import pandas (about a second and 100 MiB) to ask whether
    a NumPy array is a pandas one; a table of numbers and strings needs none of it.
    """
    rows = len(column)
    if column.dtype.kind in "iuf":
        data = np.ascontiguousarray(column)
        buffer = pa.py_buffer(data)
        return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), rows, [None, buffer])
    if column.dtype.kind == "b":
        bits = np.packbits(column, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), rows, [None, pa.py_buffer(bits)])
    encoded = [str(value).encode() for value in column.tolist()]
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.large_string(), rows, [None, pa.py_buffer(offsets), data])
