"""Map coordinates for tables of a georeferenced image, and points as GeoJSON or GeoPackage."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.geometry import GeoTransform
from tilewise.measurements._table import Table

__all__ = ["point_columns", "with_xy", "write_geojson", "write_geopackage"]

#: Columns holding an object's (row, col) position, by detector.
_POINTS = (("row", "col"), ("centroid_row", "centroid_col"))


def point_columns(table: Mapping[str, npt.NDArray[Any]]) -> tuple[str, str] | None:
    """The (row, col) columns that place each row's object, or None (stats)."""
    for rows, cols in _POINTS:
        if rows in table and cols in table:
            return rows, cols
    return None


def with_xy(table: Table, transform: GeoTransform) -> Table:
    """``table`` with ``x`` and ``y``: the map coordinates of each object's pixel centre.

    A peak at pixel (r, c) lies at the centre of that pixel, (r + 0.5, c + 0.5)
    in pixel-grid coordinates; so does a centroid (the mean of pixel indices).

    >>> north_up = GeoTransform(10, 0, 500, 0, -10, 900)
    >>> t = with_xy({"row": np.array([0]), "col": np.array([2])}, north_up)
    >>> float(t["x"][0]), float(t["y"][0])
    (525.0, 895.0)
    """
    names = point_columns(table)
    if names is None:
        return table
    rows = np.asarray(table[names[0]], dtype=np.float64) + 0.5
    cols = np.asarray(table[names[1]], dtype=np.float64) + 0.5
    x, y = transform.xy(rows, cols)  # type: ignore[arg-type]
    return {**table, "x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)}


def _plain(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_geojson(table: Mapping[str, npt.NDArray[Any]], path: Path, crs: str | None) -> None:
    """Write one Point feature per row at (x, y), the other columns as its properties.

    The coordinates are in the image's CRS, named in the collection's ``crs``
    member (the GeoJSON 2008 form GDAL and QGIS read), not reprojected to WGS84.
    """
    names = [n for n in table if n not in ("x", "y")]
    columns = {name: np.asarray(col).tolist() for name, col in table.items()}
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [columns["x"][i], columns["y"][i]]},
            "properties": {name: _plain(columns[name][i]) for name in names},
        }
        for i in range(len(columns["x"]))
    ]
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    with open(path, "w") as fh:
        json.dump(collection, fh)


def write_geopackage(
    table: Mapping[str, npt.NDArray[Any]], path: Path, crs: str | None, *, layer: str
) -> None:
    """Write one Point per row at (x, y) into a GeoPackage ``layer``, the other columns as fields.

    Through geopandas (and its pyogrio engine), the ``geo`` extra. The points
    are in the image's CRS, not reprojected.
    """
    import geopandas as gpd

    names = [n for n in table if n not in ("x", "y")]
    x = np.asarray(table["x"], dtype=np.float64)
    y = np.asarray(table["y"], dtype=np.float64)
    fields = {name: _storable(np.asarray(table[name])) for name in names}
    frame = gpd.GeoDataFrame(fields, geometry=gpd.points_from_xy(x, y), crs=crs)
    frame.to_file(path, driver="GPKG", layer=layer)


def _storable(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``column`` in a type a GeoPackage field holds (SQLite integers are signed 64-bit)."""
    if column.dtype.kind == "u" and column.dtype.itemsize == 8:
        if column.size and int(column.max()) > np.iinfo(np.int64).max:
            return column.astype(np.float64)
        return column.astype(np.int64)
    return column
