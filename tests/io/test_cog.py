"""COG output (--format cog): valid COGs, georeferenced, overviews exact to their resampling."""

from __future__ import annotations

import json
import math
import struct
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from tests.io.test_raster import UTM, write_raster
from tilewise import api
from tilewise.cli.app import cli
from tilewise.collection import batch
from tilewise.errors import UsageError
from tilewise.io._overviews import level_shapes, reduce2

rasterio = pytest.importorskip("rasterio")
cogeo = pytest.importorskip("rio_cogeo.cogeo")


# Whole-image references for one 2 x 2 level, written independently of tilewise's reduce2.


def _blocks(level: np.ndarray):
    """Each output pixel's in-image source pixels (as a list), for small images."""
    height, width = level.shape[:2]
    for i in range(-(-height // 2)):
        for j in range(-(-width // 2)):
            yield i, j, level[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(-1, *level.shape[2:])


def _is_valid(value, nodata) -> bool:
    if isinstance(value, float | np.floating) and math.isnan(value):
        return False
    return nodata is None or math.isnan(nodata) or value != nodata


def _reference(level: np.ndarray, resampling: str, nodata=None) -> np.ndarray:
    if resampling == "nearest":
        return level[::2, ::2]
    out = np.empty(
        (-(-level.shape[0] // 2), -(-level.shape[1] // 2), *level.shape[2:]), level.dtype
    )
    empty = nodata if nodata is not None else np.nan
    for i, j, pixels in _blocks(level):
        for band in np.ndindex(*level.shape[2:]):
            values = [v for v in pixels[(slice(None), *band)].tolist() if _is_valid(v, nodata)]
            if not values:
                out[(i, j, *band)] = empty
            elif resampling == "average":
                mean = math.fsum(values) / len(values)
                out[(i, j, *band)] = math.floor(mean + 0.5) if level.dtype.kind in "iu" else mean
            else:
                counts = Counter(values)
                top = max(counts.values())
                out[(i, j, *band)] = min(v for v, n in counts.items() if n == top)
    return out


def _average(level: np.ndarray, nodata: float) -> np.ndarray:
    """``_reference(level, "average", nodata)`` for one band of integers, vectorized: missing
    pixels (nodata, or outside the image) as NaN, then sums and counts of each 2 x 2."""
    height, width = -(-level.shape[0] // 2), -(-level.shape[1] // 2)
    padded = np.full((2 * height, 2 * width), np.nan)
    padded[: level.shape[0], : level.shape[1]] = np.where(level == nodata, np.nan, level)
    quads = padded.reshape(height, 2, width, 2)
    count = (~np.isnan(quads)).sum(axis=(1, 3))
    total = np.nansum(quads, axis=(1, 3))
    mean = np.floor(total / np.maximum(count, 1) + 0.5)
    return np.where(count == 0, nodata, mean).astype(level.dtype)


def _levels(image, resampling, nodata, block):
    levels = [image]
    for _ in level_shapes(image.shape[:2], block):
        if resampling == "average" and image.dtype.kind in "iu" and image.ndim == 2:
            levels.append(_average(levels[-1], nodata))
        else:
            levels.append(_reference(levels[-1], resampling, nodata))
    return levels


@pytest.mark.parametrize("resampling", ["nearest", "average", "mode"])
@pytest.mark.parametrize(
    ("dtype", "nodata"), [("uint8", 0), ("int16", None), ("float32", math.nan)]
)
def test_reduce2_equals_the_reference_at_odd_sizes_with_nodata(resampling, dtype, nodata):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 4, (7, 9, 2) if dtype == "int16" else (7, 9)).astype(dtype)
    if nodata is not None:
        image[0:2, 0:2] = nodata  # a block with no valid pixel
        image[3, 4] = nodata
    got = reduce2(image, resampling, nodata)
    want = _reference(image, resampling, nodata)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == image.dtype


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
def test_average_of_full_blocks_equals_the_general_count_of_valid_pixels(dtype):
    from tilewise.io._overviews import _average, _views

    info = np.iinfo(dtype)
    rng = np.random.default_rng(8)
    image = rng.integers(info.min, info.max, (64, 90), endpoint=True).astype(dtype)
    image[:2, :2], image[2:4, :2] = info.max, info.min  # sums at the type's ends
    image[4:6, :2] = np.array([[1, 2], [2, 2]]) if info.min >= 0 else [[-1, -2], [-2, -2]]
    views, valids = _views(image, None)
    assert all(valid is None for valid in valids)  # the fast path: four pixels in each block
    every: list[np.ndarray | None] = [np.ones(views[0].shape, bool)] * 4  # counted one by one
    fast, counted = reduce2(image, "average"), _average(views, every, image.dtype)
    np.testing.assert_array_equal(fast, counted)
    np.testing.assert_array_equal(fast, _reference(image, "average"))
    assert fast.dtype == image.dtype


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
@pytest.mark.parametrize("nodata", [None, 7])
def test_average_of_64_bit_pixels_is_exact_at_the_types_ends(dtype, nodata):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(9)
    image = rng.integers(info.min, info.max, (6, 8), endpoint=True, dtype=dtype)
    image[:2, :2], image[2:4, :2] = info.max, info.min
    image[:2, 2:4] = np.array([[info.max, info.max - 1], [info.max - 2, 2**53 + 1]], dtype)
    image[4:, 6:] = [[1, 2], [2, 2]]
    if nodata is not None:
        image[0, 0] = image[5, 5] = nodata
    want = np.empty((3, 4), dtype)
    for r in range(3):
        for c in range(4):
            block = [int(v) for v in image[2 * r : 2 * r + 2, 2 * c : 2 * c + 2].ravel()]
            valid = [v for v in block if v != nodata] or [0]
            want[r, c] = (2 * sum(valid) + len(valid)) // (2 * len(valid))  # half up, exactly
    np.testing.assert_array_equal(reduce2(image, "average", nodata), want)


def _scene(tmp_path, dtype="uint16", shape=(1500, 1300), **options):
    rng = np.random.default_rng(11)
    image = rng.integers(1, 3000, shape).astype(dtype)
    image[200:700, 250:600] = 0  # nodata across tile borders
    return write_raster(
        tmp_path / "in.tif", image, nodata=0, tiled=True, blockxsize=256, blockysize=256, **options
    )


def _read_levels(path):
    with rasterio.open(path) as ds:
        levels = [ds.read(1)]
        factors = ds.overviews(1)
    for number in range(len(factors)):
        with rasterio.open(path, OVERVIEW_LEVEL=number) as ds:
            levels.append(ds.read(1))
    return factors, levels


def test_cog_output_is_valid_georeferenced_and_its_overviews_are_exact(tmp_path):
    src = _scene(tmp_path)
    dst = tmp_path / "out.tif"
    result = CliRunner().invoke(
        cli,
        ["run", str(src), str(dst), "--op", "gaussian:sigma=2", "--tile", "300", "--workers", "2",
         "--format", "cog", "--overview-resampling", "average", "--co", "BLOCKSIZE=256",
         "--co", "COMPRESS=ZSTD", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cogeo.cog_validate(str(dst), quiet=True) == (True, [], [])

    plain = tmp_path / "plain.tif"  # the same run as a tiled TIFF: its pixels are whole-image exact
    assert api.run(src, plain, ["gaussian:sigma=2"], tile=300, executor="serial").ok
    factors, levels = _read_levels(dst)
    assert factors == [2, 4, 8]
    with rasterio.open(plain) as ds:
        full = ds.read(1)
    np.testing.assert_array_equal(levels[0], full)
    for got, want in zip(levels, _levels(full, "average", 0, (256, 256)), strict=True):
        np.testing.assert_array_equal(got, want)

    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert (o.crs, o.transform, o.nodata) == (i.crs, i.transform, i.nodata)
        assert o.block_shapes == [(256, 256)]
        assert o.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert o.compression.name == "zstd"
        halved = o.read(1, out_shape=(375, 325))  # GDAL picks the overview for the read
    np.testing.assert_array_equal(halved, levels[2])

    shown = CliRunner().invoke(cli, ["info", str(dst), "--json"])
    assert shown.exit_code == 0, shown.output
    facts = json.loads(shown.output)
    assert facts["overviews"] == [2, 4, 8]
    assert facts["crs"] == "EPSG:32633"


@pytest.mark.parametrize(
    ("dtype", "bands", "resampling", "nodata", "bigtiff"),
    [
        ("uint8", 1, "mode", 0, "IF_NEEDED"),  # a class map
        ("uint8", 3, None, None, "YES"),  # RGB, nearest by default
        ("float32", 1, None, math.nan, "NO"),  # average by default, NaN as nodata
        ("uint16", 1, "average", None, "IF_NEEDED"),  # full 2 x 2 blocks but at the edges
    ],
)
def test_cog_resamplings_bands_and_tiff_flavours(
    tmp_path, dtype, bands, resampling, nodata, bigtiff
):
    rng = np.random.default_rng(5)
    shape = (130, 100, bands) if bands > 1 else (130, 100)
    image = rng.integers(0, 5, shape).astype(dtype)
    if nodata is not None:
        image[10:50, 20:70] = nodata
    options = {"photometric": "RGB"} if bands == 3 else {}
    src = write_raster(tmp_path / "in.tif", image, nodata=nodata, crs="EPSG:4326",
                       transform=UTM, **options)  # fmt: skip
    dst = tmp_path / "out.tif"
    creation: dict[str, object] = {"BLOCKSIZE": 32, "BIGTIFF": bigtiff}
    if bigtiff == "YES":  # overview tiles are encoded as the full-resolution ones
        creation.update(COMPRESS="LZW", PREDICTOR=2)
    if resampling:
        creation["OVERVIEW_RESAMPLING"] = resampling
    report = api.run(src, dst, ["invert", "invert"], tile=37, executor="serial", format="cog",
                     creation_options=creation)  # fmt: skip
    assert report.ok
    assert cogeo.cog_validate(str(dst), quiet=True) == (True, [], [])
    with open(dst, "rb") as fh:
        head = fh.read(256)
    assert head[2:4] == struct.pack("<H", 43 if bigtiff == "YES" else 42)
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head
    expected = resampling or ("average" if dtype == "float32" else "nearest")
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert o.overviews(1) == [2, 4, 8]
        assert o.colorinterp == i.colorinterp
        planes = o.read()
    got = [planes if bands > 1 else planes[0]]
    for number in range(3):
        with rasterio.open(dst, OVERVIEW_LEVEL=number) as o:
            got.append(o.read() if bands > 1 else o.read(1))
    want = _levels(image, expected, nodata, (32, 32))
    for level, reference in zip(got, want, strict=True):
        if bands > 1:
            reference = np.moveaxis(reference, -1, 0)
        np.testing.assert_array_equal(level, reference)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["out.zarr", "--format", "cog"], "--format cog writes .tif or .tiff files, not .zarr"),
        (["out.tif", "--format", "cog", "--co", "BLOCKXSIZE=256"],
         "unknown creation option BLOCKXSIZE; COG output takes COMPRESS"),
        (["out.tif", "--overview-resampling", "mode"], "applies to --format cog only"),
        (["out.tif", "--format", "cog", "--co", "BLOCKSIZE=100"], "multiples of 16"),
        (["out.tif", "--format", "cog", "--co", "OVERVIEW_RESAMPLING=cubic"],
         "use NEAREST, AVERAGE, MODE"),
    ],
)  # fmt: skip
def test_cog_options_it_cannot_honour_are_refused_before_work(tmp_path, args, message):
    src = write_raster(tmp_path / "in.tif", np.zeros((40, 40), np.uint8))
    out, *rest = args
    result = CliRunner().invoke(
        cli, ["run", str(src), str(tmp_path / out), "--op", "invert", "--executor", "serial", *rest]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 or "Usage:" in result.output
    assert not (tmp_path / out).exists()


def test_batch_does_not_take_the_cog_format(tmp_path):
    src = write_raster(tmp_path / "in.tif", np.zeros((40, 40), np.uint8))
    out = str(tmp_path / "out")
    result = CliRunner().invoke(
        cli, ["batch", str(src), "--out", out, "--op", "invert", "--format", "cog"]
    )
    assert result.exit_code == 2, result.output
    assert "'cog' is not one of tiff, png, jpeg, npy, zarr" in result.output
    with pytest.raises(UsageError, match="written by 'tilewise run --format cog'"):
        batch([src], ops=["invert"], out=tmp_path / "out", format="cog", executor="serial")
