"""A COG's overview level 1 from the tiles the workers reduced: the same bytes as from the
decoded full resolution, through --resume, --allow-failed and every dtype and resampling."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import tilewise
from tests.conftest import read_image
from tests.runner.helpers import marked_file
from tilewise.geometry import Window
from tilewise.io._cog import CogSink
from tilewise.io._overviews import level_shapes, reduce2
from tilewise.io._tiff import assembling_path
from tilewise.io.base import SinkSpec
from tilewise.io.georef import Georef, GeoTransform

cogeo = pytest.importorskip("rio_cogeo.cogeo")

FROM_HALVES = "from the reduced tiles"
FROM_FULL = "from the level before"


def _image(shape: tuple[int, int], dtype: str, bands: int, nodata: float | None) -> np.ndarray:
    rng = np.random.default_rng(shape[0] * shape[1] + bands)
    full = shape if bands == 1 else (*shape, bands)
    kind = np.dtype(dtype)
    if kind.kind == "f":
        image = rng.normal(0, 1000, full).astype(dtype)
    else:  # few values, so mode has ties and majorities; the type's ends for average's sums
        info = np.iinfo(kind)
        ends = [info.min, info.min + 1, 7, info.max - 1, info.max]
        if kind.itemsize == 8:  # averaged in float64, exact only well inside the type
            ends = [0, 1, 7, 2**40, 2**40 + 1]
        image = rng.choice(np.array(ends), full)
        image = image.astype(dtype)
    if nodata is not None:
        image[5:40, 3:50] = nodata  # across tile borders
        image[-1, :] = nodata  # the odd last row: blocks with one valid pixel and none
    return image


def _write_cog(path: Path, image: np.ndarray, spec: SinkSpec, tile: int) -> dict[int, Any]:
    """Write ``image`` tile by tile through CogSink, as workers do; return the receipts."""
    CogSink.create(spec)
    sink = CogSink(spec)
    receipts = {}
    height, width = spec.shape
    for index, (row, col) in enumerate(
        (r, c) for r in range(0, height, tile) for c in range(0, width, tile)
    ):
        window = Window(row, col, min(tile, height - row), min(tile, width - col))
        receipts[index] = sink.write(index, window, image[window.slices])
    sink.close()
    return receipts


CASES = [
    # shape, dtype, bands, nodata, resampling, tile, block
    ((301, 257), "uint16", 1, None, "average", 96, 32),  # 3 blocks: halves straddle level 1's
    ((301, 257), "uint16", 1, 0, "average", 64, 32),  # 2 blocks: a half is one level-1 tile
    ((130, 199), "int8", 1, -128, "mode", 48, 16),
    ((257, 131), "uint8", 3, None, "nearest", 64, 16),
    ((131, 97), "int32", 2, None, "average", 32, 16),
    ((131, 97), "uint32", 1, 7, "mode", 48, 16),
    ((97, 131), "int64", 1, None, "average", 32, 16),
    ((129, 99), "float32", 1, math.nan, "average", 48, 16),
    ((99, 129), "float64", 4, -1.0, "average", 32, 16),
]


@pytest.mark.parametrize(
    ("shape", "dtype", "bands", "nodata", "resampling", "tile", "block"), CASES
)
def test_level_1_from_the_reduced_tiles_is_the_cog_made_from_the_full_resolution(
    tmp_path, caplog, shape, dtype, bands, nodata, resampling, tile, block
):
    image = _image(shape, dtype, bands, nodata)
    transform = GeoTransform(0.5, 0, -180, 0, -0.5, 90)
    georef = Georef(band_count=bands, crs_epsg=4326, transform=transform, nodata=nodata)
    options = {"COMPRESS": "ZSTD", "OVERVIEW_RESAMPLING": resampling.upper()}
    if np.dtype(dtype).kind in "iu":
        options.update(COMPRESS="LZW", PREDICTOR=2)
    out = tmp_path / "out.tif"
    spec = SinkSpec(str(out), "cog", shape, bands, dtype, (block, block), options, georef=georef)
    receipts = _write_cog(out, image, spec, tile)
    assert all("half" in receipt for receipt in receipts.values())

    with caplog.at_level(logging.INFO, logger="tilewise.io._cog"):
        CogSink.assemble(spec, receipts)
    assert FROM_HALVES in caplog.text
    new = assembling_path(out).read_bytes()
    caplog.clear()
    without = {i: {k: v for k, v in r.items() if k != "half"} for i, r in receipts.items()}
    with caplog.at_level(logging.INFO, logger="tilewise.io._cog"):
        CogSink.assemble(spec, without)  # as a tilewise that reduced no tiles wrote it
    assert FROM_HALVES not in caplog.text and FROM_FULL in caplog.text
    assert assembling_path(out).read_bytes() == new

    CogSink.commit(spec, receipts)
    assert cogeo.cog_validate(str(out), quiet=True) == (True, [], [])
    with tifffile.TiffFile(out) as tif:
        first = tif.pages[1].asarray()
    np.testing.assert_array_equal(first, reduce2(image, resampling, nodata))


def test_a_tile_whose_reduced_pixels_are_lost_or_damaged_is_redone_on_resume(tmp_path, caplog):
    src, image = marked_file(tmp_path)
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.raise_on_marker:fixed={fixed}", "invert"]
    args: dict[str, Any] = {
        "tile": 64, "executor": "serial", "retries": 0, "format": "cog", "progress": False,
        "creation_options": {"BLOCKSIZE": 32, "OVERVIEW_RESAMPLING": "AVERAGE"},
    }  # fmt: skip
    out = tmp_path / "out.tif"
    assert tilewise.run(src, out, ops, **args).failed == 1
    partial = tmp_path / ".out.tif.partial"
    (partial / "tile-0000000.half").unlink()
    damaged = partial / "tile-0000005.half"
    damaged.write_bytes(b"\xff" * damaged.stat().st_size)  # same size, other bytes
    fixed.write_text("fixed")
    with caplog.at_level(logging.INFO, logger="tilewise.io._cog"):
        again = tilewise.run(src, out, ops, resume=True, **args)
    assert again.ok
    assert sorted(again.extra["redone_damaged"]) == [0, 5]
    assert FROM_HALVES in caplog.text
    clean = tmp_path / "clean.tif"
    assert tilewise.run(src, clean, ops, **args).ok
    assert out.read_bytes() == clean.read_bytes()
    np.testing.assert_array_equal(read_image(out), 255 - image)


def test_a_failed_tile_filled_is_in_the_overviews_as_in_the_full_resolution(tmp_path, caplog):
    src, image = marked_file(tmp_path, shape=(255, 253))
    out = tmp_path / "out.tif"
    with caplog.at_level(logging.INFO, logger="tilewise.io._cog"):
        report = tilewise.run(
            src, out, ["tests.faults.crash_on_marker:how=exit", "invert"], tile=64, workers=2,
            retries=0, format="cog", allow_failed=True, fill=3, progress=False,
            creation_options={"BLOCKSIZE": 32, "OVERVIEW_RESAMPLING": "MODE"},
        )  # fmt: skip
    assert report.finalized and report.failed == 1
    assert FROM_HALVES in caplog.text
    expected = 255 - image
    expected[64:128, 192:253] = 3  # tile 7, filled
    with tifffile.TiffFile(out) as tif:
        pages = [page.asarray() for page in tif.pages]
    assert len(pages) == 1 + len(level_shapes(expected.shape, (32, 32)))
    level = expected
    for number, page in enumerate(pages):
        if number:
            level = reduce2(level, "mode")
        np.testing.assert_array_equal(page, level)
