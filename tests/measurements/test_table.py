"""Tables: plain NumPy columns, written as .csv (always) or .parquet (pyarrow)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tilewise.errors import OutputError, UsageError
from tilewise.measurements import Peaks, concat, tiled, to_frame, write_table


@pytest.fixture
def table():
    image = np.zeros((20, 20), np.uint16)
    image[5, 5], image[12, 14] = 300, 200
    return tiled(image, detect=Peaks(10, 2), tile=7)


def test_csv_round_trip(tmp_path, table):
    path = write_table(table, tmp_path / "peaks.csv")
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["row", "col", "value"]
    assert sorted(rows[1:]) == [["12", "14", "200"], ["5", "5", "300"]]
    assert [p.name for p in tmp_path.iterdir()] == ["peaks.csv"]


def test_parquet_and_frame(tmp_path, table):
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    path = write_table(table, tmp_path / "peaks.parquet")
    back = pq.read_table(path).to_pydict()
    assert sorted(back["value"]) == [200, 300]
    frame = to_frame(table)
    assert list(frame.columns) == ["row", "col", "value"]
    assert frame["value"].dtype == np.uint16


def test_bad_names_and_places(tmp_path, table):
    with pytest.raises(UsageError, match=r"\.csv, \.parquet, \.geojson or \.gpkg"):
        write_table(table, tmp_path / "peaks.xlsx")
    for suffix in (".geojson", ".gpkg"):
        with pytest.raises(UsageError, match="map points need map coordinates"):
            write_table(table, tmp_path / f"peaks{suffix}")
    with pytest.raises(OutputError, match="cannot write"):
        write_table(table, tmp_path / "missing" / "peaks.csv")
    with pytest.raises(UsageError, match="differ in length"):
        write_table({"a": np.zeros(2), "b": np.zeros(3)}, tmp_path / "t.csv")
    with pytest.raises(UsageError, match="different columns"):
        concat([{"a": np.zeros(1)}, {"b": np.zeros(1)}])
