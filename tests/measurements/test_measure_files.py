"""Measuring a collection into one table; GeoPackage points; the label image's lock and checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from skimage.feature import peak_local_max

import tilewise
from tilewise.cli.app import cli
from tilewise.errors import OutputError, TileError, UsageError
from tilewise.runner.lock import holding

TILE = 23
DETECT = "peaks:min_distance=3,threshold=100"


def spots(seed: int, shape=(50, 61)) -> np.ndarray:
    """Peaks on tile edges and corners, a different set per seed."""
    image = np.random.default_rng(seed).integers(0, 30, shape).astype(np.uint8)
    for r, c in [(23, 23), (22, 46), (5, 40 + seed), (46, 10 + seed)]:
        image[r, c] = 150 + seed
    return image


def invoke(*args: object):
    return CliRunner().invoke(cli, [*map(str, args)], catch_exceptions=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.npy", "sub/b.npy", "c.npy"]):
        np.save(tmp_path / "in" / name, spots(i))
    return tmp_path / "in"


def expected_peaks(image: np.ndarray) -> list[tuple[int, int]]:
    return sorted(map(tuple, peak_local_max(image, min_distance=3, threshold_abs=100)))


def test_a_folder_is_one_table_with_a_file_column_each_file_as_measured_alone(folder, tmp_path):
    table = tmp_path / "peaks.csv"
    result = invoke(
        "measure", folder, "--detect", DETECT, "-o", table, "--tile", TILE, "--workers", 2, "-q"
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(table)
    assert list(got.columns[:1]) == ["file"]
    assert list(dict.fromkeys(got["file"])) == ["a.npy", "c.npy", "sub/b.npy"]  # input order
    for name in ("a.npy", "c.npy", "sub/b.npy"):
        rows = got[got["file"] == name]
        alone = tilewise.measure(folder / name, detect=DETECT, tile=TILE, executor="serial")
        pd.testing.assert_frame_equal(
            rows.drop(columns="file").reset_index(drop=True), alone, check_dtype=False
        )
        assert sorted(zip(rows["row"], rows["col"], strict=True)) == expected_peaks(
            np.load(folder / name)
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "peaks.csv"]


def test_a_bad_file_is_named_the_rest_completes_and_resume_measures_only_it(folder, tmp_path):
    (folder / "bad.npy").write_bytes(b"not an image at all")
    table, report = tmp_path / "peaks.parquet", tmp_path / "report.json"
    args = ("measure", folder, "--detect", DETECT, "-o", table, "--tile", TILE, "--workers", 2)
    first = invoke(*args, "--report", report, "-q")
    assert first.exit_code == 3, first.output
    assert f"Error: {folder / 'bad.npy'}: not a TIFF" in first.output
    got = pd.read_parquet(table)
    assert sorted(set(got["file"])) == ["a.npy", "c.npy", "sub/b.npy"]
    data = json.loads(report.read_text())
    assert data["files"] == {"total": 4, "done": 3, "failed": 1, "skipped": 0}
    names = ["a.npy", "c.npy", "sub/b.npy"]
    assert data["objects"] == {n: int((got["file"] == n).sum()) for n in names}
    again = invoke(*args, "-q")
    assert again.exit_code == 2 and "--resume" in again.output  # not silently started over
    np.save(folder / "bad.npy", spots(7))
    second = invoke(*args, "--resume", "--report", report, "-q")
    assert second.exit_code == 0, second.output
    assert json.loads(report.read_text())["files"] == {
        "total": 4, "done": 1, "failed": 0, "skipped": 3,
    }  # fmt: skip
    got = pd.read_parquet(table)
    fixed = got[got["file"] == "bad.npy"]
    assert sorted(zip(fixed["row"], fixed["col"], strict=True)) == expected_peaks(spots(7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "peaks.parquet", "report.json"]


def test_python_measure_takes_a_list_and_raises_naming_a_failed_file(folder, tmp_path):
    files = [folder / "a.npy", folder / "c.npy"]
    frame = tilewise.measure(files, detect=DETECT, tile=TILE, executor="serial")
    assert frame["file"].tolist() == sorted(frame["file"].tolist())
    assert set(frame["file"]) == {"a.npy", "c.npy"}
    (folder / "empty.npy").write_bytes(b"")
    with pytest.raises(TileError, match=r"1 of 2 file\(s\) failed \(.*empty\.npy"):
        tilewise.measure([files[0], folder / "empty.npy"], detect=DETECT, executor="serial")
    with pytest.raises(UsageError, match="labels is for one image"):
        tilewise.measure(folder, detect="regions:threshold=1", labels=tmp_path / "l.zarr")


def geotiff(path: Path, image: np.ndarray, crs: str = "EPSG:32633") -> Path:
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    with rasterio.open(
        path, "w", driver="GTiff", width=image.shape[1], height=image.shape[0], count=1,
        dtype=image.dtype.name, crs=crs, transform=Affine(10.0, 0, 500_000.0, 0, -10.0, 4e6),
    ) as ds:  # fmt: skip
        ds.write(image, 1)
    return path


def test_geopackage_points_in_the_input_crs(tmp_path):
    gpd = pytest.importorskip("geopandas")
    src = geotiff(tmp_path / "geo.tif", spots(1))
    out = tmp_path / "peaks.gpkg"
    result = invoke("measure", src, "--detect", DETECT, "-o", out, "--tile", TILE, "-q")
    assert result.exit_code == 0, result.output
    points = gpd.read_file(out)
    assert points.crs.to_epsg() == 32633
    assert sorted(zip(points["row"], points["col"], strict=True)) == expected_peaks(spots(1))
    for row, col, geometry in zip(points["row"], points["col"], points.geometry, strict=True):
        assert (geometry.x, geometry.y) == (500_000.0 + 10 * (col + 0.5), 4e6 - 10 * (row + 0.5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geo.tif", "peaks.gpkg"]


def test_a_collection_into_a_geopackage_refuses_a_file_in_another_crs(tmp_path):
    gpd = pytest.importorskip("geopandas")
    (tmp_path / "in").mkdir()
    geotiff(tmp_path / "in" / "a.tif", spots(0))
    geotiff(tmp_path / "in" / "b.tif", spots(1), crs="EPSG:32632")
    out = tmp_path / "peaks.gpkg"
    result = invoke("measure", tmp_path / "in", "--detect", DETECT, "-o", out, "-q")
    assert result.exit_code == 3
    assert "b.tif: its CRS (EPSG:32632) differs from that of a.tif (EPSG:32633)" in result.output
    assert set(gpd.read_file(out)["file"]) == {"a.tif"}


def test_geopackage_without_geopandas_is_refused_before_work(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "geopandas" else real(name)
    )
    src = tmp_path / "in.npy"
    np.save(src, spots(0))
    result = invoke("measure", src, "--detect", DETECT, "-o", tmp_path / "p.gpkg", "-q")
    assert result.exit_code == 2
    assert "writing a GeoPackage needs geopandas: pip install 'tilewise[geo]'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_the_label_image_is_locked_and_never_the_input(tmp_path):
    np.save(tmp_path / "a.npy", spots(0))
    src = tmp_path / "in.zarr"
    assert tilewise.run(tmp_path / "a.npy", src, ["invert"], executor="serial").ok
    detect = "regions:threshold=200"
    with pytest.raises(UsageError, match="the label image is the input"):
        tilewise.measure(src, detect=detect, labels=src, overwrite=True, executor="serial")
    labels = tmp_path / "labels.zarr"
    with holding(labels), pytest.raises(OutputError, match="another tilewise run"):
        tilewise.measure(src, detect=detect, labels=labels, executor="serial")
    assert not labels.exists()
    tilewise.measure(src, detect=detect, labels=labels, executor="serial")
    assert labels.exists() and not (tmp_path / ".labels.zarr.lock").exists()
