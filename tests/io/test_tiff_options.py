"""TIFF creation options as GDAL users write them: PREDICTOR, BLOCKSIZE, BIGTIFF."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from tilewise import api
from tilewise.errors import UsageError


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(3)
    data = np.cumsum(rng.integers(0, 4, (300, 340, 3)), axis=1).astype("uint16")
    path = tmp_path / "in.npy"
    np.save(path, data)
    return path, data


def test_predictor_and_block_size_write_what_they_say(tmp_path, image):
    src, data = image
    dst = tmp_path / "out.tif"
    options = {"COMPRESS": "ZSTD", "PREDICTOR": "2", "BLOCKSIZE": "256"}
    report = api.run(src, dst, ["invert"], tile=100, creation_options=options, workers=2)
    assert report.ok
    with tifffile.TiffFile(dst) as tif:
        page = tif.pages.first
        assert (page.tilelength, page.tilewidth, page.predictor) == (256, 256, 2)
        np.testing.assert_array_equal(page.asarray(), np.invert(data))
    rasterio = pytest.importorskip("rasterio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        ds = rasterio.open(dst)
    with ds:
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), np.invert(data))


def test_block_x_and_y_sizes_and_classic_tiff(tmp_path, image):
    src, data = image
    dst = tmp_path / "out.tif"
    options = {"BLOCKXSIZE": 64, "BLOCKYSIZE": 32, "BIGTIFF": "NO"}
    assert api.run(src, dst, ["invert"], tile=50, creation_options=options, workers=1).ok
    with tifffile.TiffFile(dst) as tif:
        assert not tif.is_bigtiff
        assert (tif.pages.first.tilelength, tif.pages.first.tilewidth) == (32, 64)
        np.testing.assert_array_equal(tif.asarray(), np.invert(data))


def test_default_tiff_tiles_are_not_small_for_an_odd_tile_size(tmp_path):
    src = tmp_path / "big.npy"
    np.lib.format.open_memmap(src, mode="w+", dtype="uint8", shape=(3000, 3000)).flush()
    summary = api.plan(src, ["invert"], dst=tmp_path / "o.tif", tile=1000)
    assert summary["output"]["chunks"] == [512, 512]
    assert summary["grid"]["tile_shape"] == [1024, 1024]
    summary = api.plan(src, ["invert"], dst=tmp_path / "o.tif", tile=600)
    assert summary["output"]["chunks"] == [256, 256]
    assert summary["grid"]["tile_shape"] == [768, 768]


def test_unknown_option_lists_the_known_ones_and_predictor_needs_integers(tmp_path, image):
    src, _ = image
    with pytest.raises(UsageError, match=r"unknown creation option TILED; .*BLOCKXSIZE"):
        api.run(src, tmp_path / "o.tif", ["invert"], creation_options={"TILED": "YES"})
    with pytest.raises(UsageError, match=r"PREDICTOR=2 .* is for integer pixels"):
        api.run(
            src,
            tmp_path / "o.tif",
            ["to_dtype:dtype=float32"],
            creation_options={"PREDICTOR": 2},
            executor="serial",
        )
    assert not (tmp_path / "o.tif").exists()
