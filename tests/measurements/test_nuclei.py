"""Nuclei on a real fluorescence image with ground truth: tiled equals whole, and the count is sane.

StarDist's wheel ships ``data/images/img2d.tif`` (512×512 uint16, fluorescent nuclei) and
``mask2d.tif`` (its annotated instance labels, 125 nuclei). The package is located without
importing it (its import is heavy) and the files are read with tifffile.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from click.testing import CliRunner
from skimage.feature import peak_local_max

import tilewise
from tilewise.cli.app import cli

SIGMA, MIN_DISTANCE, THRESHOLD = 3, 7, 40
OPS = [f"gaussian:sigma={SIGMA}"]
DETECT = f"peaks:min_distance={MIN_DISTANCE},threshold={THRESHOLD},exclude_border=0"


def stardist_image(name: str) -> np.ndarray:
    spec = importlib.util.find_spec("stardist")  # finds the package without running it
    assert spec is not None and spec.submodule_search_locations, "pip install 'tilewise[test]'"
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
    return np.asarray(tifffile.imread(folder / name))


@pytest.fixture(scope="module")
def nuclei_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nuclei") / "img2d.tif"
    tifffile.imwrite(path, stardist_image("img2d.tif"))
    return path


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    """peak_local_max on the whole filtered image, in raster order."""
    filtered = tilewise.process(stardist_image("img2d.tif"), OPS, tile=100_000)
    peaks = peak_local_max(
        filtered, min_distance=MIN_DISTANCE, threshold_abs=THRESHOLD, exclude_border=False
    )
    return peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))]


def coordinates(table: pd.DataFrame) -> np.ndarray:
    rows = table[["row", "col"]].to_numpy()
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def test_tiled_measure_equals_whole_and_the_count_against_ground_truth_is_sane(
    nuclei_file, expected
):
    frame = tilewise.measure(nuclei_file, OPS, detect=DETECT, tile=97, workers=2)
    np.testing.assert_array_equal(coordinates(frame), expected)
    assert len(expected) == 115

    truth = stardist_image("mask2d.tif")
    nuclei = np.unique(truth[truth > 0])
    hit = truth[expected[:, 0], expected[:, 1]]
    found = np.unique(hit[hit > 0])  # each annotated nucleus matched by at most one peak
    true_pos = len(found)
    false_pos = len(expected) - true_pos  # on background, or a second peak in one nucleus
    missed = len(nuclei) - true_pos
    assert len(nuclei) == 125
    assert (true_pos, false_pos, missed) == (106, 9, 19)
    precision, recall = true_pos / len(expected), true_pos / len(nuclei)
    assert precision >= 0.9 and recall >= 0.8


def test_the_command_line_with_uneven_tiles_finds_the_same_nuclei(nuclei_file, expected, tmp_path):
    table = tmp_path / "nuclei.csv"
    result = CliRunner().invoke(
        cli,
        [
            "measure", str(nuclei_file), "--op", OPS[0], "--detect", DETECT, "-o", str(table),
            "--tile", "61", "--workers", "2", "-q",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(coordinates(pd.read_csv(table)), expected)
