"""tilewise measure / stats on files: the real command line and executors equal the whole image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from skimage.feature import peak_local_max
from skimage.measure import label, regionprops_table

import tilewise
from tests.conftest import read_image
from tests.faults import MARKER
from tilewise.cli.app import cli

OPS = ["gaussian:sigma=1.5"]
TILE = 23  # odd, so objects sit across edges and corners at no special offsets


def blobs(shape=(70, 81)) -> np.ndarray:
    """Bright spots and bars centred on tile edges and corners, plus a plateau."""
    image = np.random.default_rng(5).integers(0, 20, shape).astype(np.float32)
    for r, c in [(23, 23), (46, 46), (22, 46), (46, 24), (5, 69), (69, 0), (34, 11)]:
        image[r, c] = 200 + r
    image[10:12, 20:27] = 180.0  # a plateau across a vertical edge
    image[40:43, 5:75] = 150.0  # a bar across every vertical edge
    image[15:60, 60:62] = 150.0  # a bar across the horizontal edges, joining it
    return image


def invoke(*args: object):
    return CliRunner().invoke(cli, [*map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("measure") / "blobs.npy"
    np.save(path, blobs())
    return path


@pytest.fixture(scope="module")
def filtered() -> np.ndarray:
    return tilewise.process(blobs(), OPS, tile=1000)


@pytest.mark.parametrize("layout", ["grid", "rows"])
def test_peaks_from_the_command_line_equal_whole_image_skimage(source, filtered, tmp_path, layout):
    table = tmp_path / "peaks.csv"
    ops = [x for op in OPS for x in ("--op", op)]
    result = invoke(
        "measure", source, *ops, "--detect", "peaks:min_distance=4,threshold=30",
        "-o", table, "--tile", TILE, "--layout", layout, "--workers", 2, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = pd.read_csv(table)
    expected = peak_local_max(filtered, min_distance=4, threshold_abs=30)
    assert len(expected) >= 6
    assert sorted(zip(got["row"], got["col"], strict=True)) == sorted(map(tuple, expected))
    np.testing.assert_array_equal(
        got.sort_values(["row", "col"])["value"],
        [filtered[r, c] for r, c in sorted(map(tuple, expected))],
    )
    assert not (tmp_path / ".peaks.csv.parts").exists()


def test_regions_with_an_intensity_image_and_a_report_of_counts(source, filtered, tmp_path):
    intensity = tmp_path / "values.npy"
    values = np.arange(70 * 81, dtype=np.uint16).reshape(70, 81)
    np.save(intensity, values)
    table, report = tmp_path / "regions.csv", tmp_path / "report.json"
    result = invoke(
        "measure", source, "--op", OPS[0], "--detect", "regions:threshold=60,connectivity=2",
        "--intensity", intensity, "-o", table, "--tile", TILE, "--workers", 2, "-q",
        "--report", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = pd.read_csv(table).sort_values("bbox_min_row", kind="stable")
    labels = label(filtered > 60, connectivity=2)
    ref = regionprops_table(
        labels, values, properties=("area", "bbox", "centroid", "intensity_mean", "intensity_max")
    )
    order = np.lexsort((ref["bbox-1"], ref["bbox-0"]))
    got = got.sort_values(["bbox_min_row", "bbox_min_col"])
    assert len(got) == len(order) >= 2
    np.testing.assert_array_equal(got["area"], ref["area"][order])
    np.testing.assert_array_equal(got["bbox_max_col"], ref["bbox-3"][order])
    np.testing.assert_allclose(got["centroid_row"], ref["centroid-0"][order], rtol=1e-12)
    np.testing.assert_allclose(got["intensity_mean"], ref["intensity_mean"][order], rtol=1e-12)
    np.testing.assert_array_equal(got["intensity_max"], ref["intensity_max"][order])
    counts = json.loads(report.read_text())["objects"]
    assert len(counts) == 4 * 4 and sum(counts.values()) >= len(got)
    shown = invoke("report", report, "--png", tmp_path / "map.png")
    assert shown.exit_code == 0, shown.output
    busiest = max(counts, key=lambda k: counts[k])
    assert f"{sum(counts.values())} in 16 tiles, most in tile {busiest}" in shown.output
    assert (tmp_path / "map.png").stat().st_size > 0


def test_a_failed_tile_is_resumed_and_finished_tiles_are_merged_from_their_parts(tmp_path):
    image = blobs().astype(np.uint8)
    image[image == MARKER] = MARKER + 1
    image[35, 35] = MARKER  # in tile 5 of the 23-px grid
    source = tmp_path / "in.npy"
    np.save(source, image)
    fixed = tmp_path / "fixed"
    args = (
        "measure", source, "--op", f"tests.faults.raise_on_marker:fixed={fixed}",
        "--detect", "regions:threshold=100", "-o", tmp_path / "r.csv", "--tile", TILE,
        "--workers", 2, "-q", "--retries", 0,
    )  # fmt: skip
    first = invoke(*args, "--report", tmp_path / "first.json")
    assert first.exit_code == 3, first.output
    assert not (tmp_path / "r.csv").exists()
    assert len(list((tmp_path / ".r.csv.parts").glob("*.pickle"))) == 16 - 1
    fixed.touch()
    second = invoke(*args, "--resume", "--report", tmp_path / "second.json")
    assert second.exit_code == 0, second.output
    report = json.loads((tmp_path / "second.json").read_text())
    assert (report["tiles"]["done"], report["tiles"]["skipped"]) == (1, 15)
    got = pd.read_csv(tmp_path / "r.csv")
    ref = regionprops_table(label(image > 100), properties=("area",))
    assert sorted(got["area"]) == sorted(ref["area"])
    assert not (tmp_path / ".r.csv.parts").exists()
    assert not (tmp_path / ".r.csv.journal").exists()


def test_a_full_disk_stops_the_measurement_at_once_and_resume_finishes_it(tmp_path):
    image = blobs().astype(np.uint8)
    image[image == MARKER] = MARKER + 1
    image[12, 12] = MARKER  # in tile 0, so the tiles after it are never run
    source = tmp_path / "in.npy"
    np.save(source, image)
    fixed = tmp_path / "fixed"
    args = (
        "measure", source, "--op", f"tests.faults.disk_full_on_marker:fixed={fixed}",
        "--detect", "regions:threshold=100", "-o", tmp_path / "r.csv", "--tile", TILE,
        "--executor", "serial", "-q", "--retries", 2,
    )  # fmt: skip
    first = invoke(*args, "--report", tmp_path / "first.json")
    assert first.exit_code == 3, first.output
    report = json.loads((tmp_path / "first.json").read_text())
    assert "/full/disk/tile" in report["stopped_by"]
    [failure] = report["failures"]
    assert (failure["tile"], failure["kind"], failure["attempts"]) == (0, "environment", 1)
    assert len(report["per_tile"]) == 1  # stopped at the first tile: none of the 15 others ran
    fixed.touch()
    second = invoke(*args, "--resume")
    assert second.exit_code == 0, second.output
    got = pd.read_csv(tmp_path / "r.csv")
    want = regionprops_table(label(image > 100), properties=("area",))
    assert sorted(got["area"]) == sorted(want["area"])


def test_python_measure_returns_a_frame_or_columns_and_stats_equal_numpy(source, filtered):
    frame = tilewise.measure(source, detect="regions:threshold=60", tile=TILE, workers=2)
    columns = tilewise.measure(
        source, OPS, detect="regions:threshold=60", tile=TILE, executor="serial", frame=False
    )
    assert isinstance(frame, pd.DataFrame) and isinstance(columns, dict)
    assert sorted(frame["area"]) == sorted(
        regionprops_table(label(blobs() > 60), properties=("area",))["area"]
    )
    assert sorted(columns["area"]) == sorted(
        regionprops_table(label(filtered > 60), properties=("area",))["area"]
    )
    [band] = tilewise.stats(source, OPS, tile=TILE, workers=2)
    assert band.count == filtered.size
    assert (band.minimum, band.maximum) == (filtered.min(), filtered.max())
    np.testing.assert_allclose(band.mean, filtered.astype(np.float64).mean(), rtol=1e-12)
    np.testing.assert_allclose(band.std, filtered.astype(np.float64).std(), rtol=1e-9)


def test_stats_command_prints_json_equal_to_numpy(tmp_path):
    image = np.random.default_rng(1).integers(0, 4000, (61, 47), dtype=np.uint16)
    np.save(tmp_path / "u16.npy", image)
    result = invoke(
        "stats", tmp_path / "u16.npy", "--bins", 16, "--range", "0,4000", "--json",
        "--tile", 17, "--workers", 2, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [band] = json.loads(result.output)
    assert band["count"] == image.size and band["max"] == image.max()
    assert band["mean"] == pytest.approx(image.mean(), rel=1e-12)
    assert band["percentiles"]["50.0"] == np.percentile(image, 50)
    assert band["histogram"] == np.histogram(image, 16, (0, 4000))[0].tolist()


def test_bad_detector_and_table_type_exit_2_before_work(source, tmp_path):
    bad = invoke("measure", source, "--detect", "blobs:x=1", "-o", tmp_path / "t.csv")
    assert bad.exit_code == 2 and "unknown detector 'blobs'" in bad.output
    wrong = invoke("measure", source, "--detect", "regions:threshold=1", "-o", tmp_path / "t.txt")
    assert wrong.exit_code == 2 and ".csv, .parquet, .geojson or .gpkg" in wrong.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_peaks_on_dask_equal_the_local_executor(source, filtered):
    pytest.importorskip("distributed")
    got = tilewise.measure(
        source, OPS, detect="peaks:min_distance=4,threshold=30", tile=TILE, executor="dask",
        workers=2, frame=False,
    )  # fmt: skip
    expected = peak_local_max(filtered, min_distance=4, threshold_abs=30)
    assert sorted(zip(got["row"], got["col"], strict=True)) == sorted(map(tuple, expected))


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_label_image_equals_skimage_labels_tile_by_tile(source, filtered, tmp_path, suffix):
    out = tmp_path / f"labels{suffix}"
    result = invoke(
        "measure", source, "--op", OPS[0], "--detect", "regions:threshold=60,connectivity=2",
        "-o", tmp_path / "r.parquet", "--labels", out, "--tile", TILE, "--workers", 2, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = read_image(out)
    assert labels.dtype == np.uint32
    np.testing.assert_array_equal(labels, label(filtered > 60, connectivity=2))
    table = pd.read_parquet(tmp_path / "r.parquet")
    assert table["label"].tolist() == list(range(1, labels.max() + 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "r.parquet"])


def test_a_georeferenced_input_gives_x_y_and_geojson_points(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    image = blobs()
    path = tmp_path / "geo.tif"
    transform = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_600_000.0)
    with rasterio.open(
        path, "w", driver="GTiff", width=81, height=70, count=1, dtype="float32",
        crs="EPSG:32633", transform=transform,
    ) as ds:  # fmt: skip
        ds.write(image, 1)
    out = tmp_path / "peaks.geojson"
    result = invoke(
        "measure", path, "--detect", "peaks:min_distance=4,threshold=100", "-o", out,
        "--tile", TILE, "--workers", 2, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    collection = json.loads(out.read_text())
    assert collection["crs"]["properties"]["name"] == "EPSG:32633"
    expected = peak_local_max(image, min_distance=4, threshold_abs=100)
    points = sorted(
        (f["properties"]["row"], f["properties"]["col"], *f["geometry"]["coordinates"])
        for f in collection["features"]
    )
    assert [p[:2] for p in points] == sorted(map(tuple, expected))
    for row, col, x, y in points:
        assert (x, y) == (500_000.0 + 10.0 * (col + 0.5), 4_600_000.0 - 10.0 * (row + 0.5))


def test_geojson_of_a_plain_image_is_refused_before_work(source, tmp_path):
    plain = invoke(
        "measure", source, "--detect", "peaks:min_distance=4,threshold=100",
        "-o", tmp_path / "plain.geojson", "--executor", "serial",
    )  # fmt: skip
    assert plain.exit_code == 2 and "not georeferenced" in plain.output
    assert list(tmp_path.iterdir()) == []
