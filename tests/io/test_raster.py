"""GDAL rasters through rasterio: reader choice by content, georeferencing, info, install hint."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from tilewise import api, io
from tilewise.cli.app import cli
from tilewise.errors import NoDecoderError, UnsupportedFormatError
from tilewise.geometry import Window
from tilewise.io import _raster

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402


def from_origin(west, north, xsize, ysize):
    """rasterio.transform.from_origin, without its deprecated ``Affine * Affine``."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


UTM = from_origin(500000.0, 4200000.0, 10.0, 10.0)


def write_raster(path, image, *, driver="GTiff", crs="EPSG:32633", transform=UTM, **options):
    """Write ``image`` ((H, W) or (H, W, bands)) with rasterio; returns ``path``."""
    bands = 1 if image.ndim == 2 else image.shape[2]
    planes = image[np.newaxis] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    descriptions = options.pop("descriptions", None)
    with rasterio.open(
        path,
        "w",
        driver=driver,
        width=image.shape[1],
        height=image.shape[0],
        count=bands,
        dtype=image.dtype,
        crs=crs,
        transform=transform,
        **options,
    ) as ds:
        ds.write(planes)
        if descriptions:
            ds.descriptions = descriptions
    return path


GEOTIFFS = [
    # crs, transform, dtype, bands, nodata
    ("EPSG:4326", from_origin(-10.0, 60.0, 0.25, 0.25), "uint8", 1, 0),
    ("EPSG:32633", UTM, "uint16", 3, 65535),
    ("EPSG:3857", from_origin(-2e6, 8e6, 30.0, 30.0), "int16", 7, -32768),
    ("EPSG:32633", UTM, "float32", 1, math.nan),
]


@pytest.mark.parametrize(("crs", "transform", "dtype", "bands", "nodata"), GEOTIFFS)
@pytest.mark.parametrize("tiled", [True, False])
def test_geotiff_pixels_by_tifffile_georef_by_rasterio(
    tmp_path, crs, transform, dtype, bands, nodata, tiled, opened
):
    image = make_image((157, 203), dtype, bands)
    names = tuple(f"B{b + 1}" for b in range(bands))
    # tiled deflate: TiffSource; striped uncompressed: WholeTiffSource (both tifffile's pixels)
    layout = {"tiled": True, "blockxsize": 64, "blockysize": 32, "compress": "deflate"}
    path = write_raster(
        tmp_path / "in.dat",  # the extension does not matter: the content decides
        image,
        crs=crs,
        transform=transform,
        nodata=nodata,
        descriptions=names,
        **(layout if tiled else {}),
    )
    source = opened(path)
    assert source.reader == ("tifffile" if tiled else "libtiff (whole file)")
    np.testing.assert_array_equal(source.read(Window(3, 5, 100, 150)), image[3:103, 5:155])
    georef = source.georef
    assert georef is not None and georef.transform is not None
    assert georef.nodata is not None or nodata is None
    with rasterio.open(path) as ds:
        assert georef.crs == crs and georef.crs_epsg == ds.crs.to_epsg()
        assert georef.crs_wkt == ds.crs.to_wkt()
        assert georef.transform.coefficients() == tuple(ds.transform)[:6]
        assert georef.descriptions == names == ds.descriptions
        assert georef.colorinterp == tuple(c.name for c in ds.colorinterp)
        assert georef.nodata == nodata or (
            nodata is not None and math.isnan(nodata) and math.isnan(georef.nodata or 0.0)
        )
        facts = source.info()
        assert facts["crs"] == crs
        assert facts["bounds"] == list(ds.bounds)
        assert facts["resolution"] == list(ds.res)
    source.close()


def test_a_format_tifffile_does_not_read_goes_to_rasterio_and_reads_by_window(tmp_path, opened):
    image = make_image((157, 203), "int16", 2)
    path = write_raster(tmp_path / "scene.tif", image, driver="ENVI")  # not a TIFF, despite .tif
    source = opened(path)
    assert type(source).__name__ == "RasterSource"
    assert source.reader == "rasterio (GDAL ENVI driver)"
    assert (source.shape, source.bands, source.dtype) == ((157, 203), 2, np.dtype("int16"))
    np.testing.assert_array_equal(source.read(Window(150, 200, 7, 3)), image[150:, 200:])
    assert source.georef is not None and source.georef.crs == "EPSG:32633"


def test_a_vrt_is_read_through_the_file_it_points_to(tmp_path, opened):
    image = make_image((157, 203), "uint8")
    base = write_raster(tmp_path / "base.tif", image)
    vrt = tmp_path / "crop.vrt"
    with rasterio.open(base) as ds:
        from rasterio.vrt import WarpedVRT

        with WarpedVRT(ds) as warped:
            from rasterio.shutil import copy

            copy(warped, vrt, driver="VRT")
    source = opened(vrt)
    assert source.info()["driver"] == "VRT"
    np.testing.assert_array_equal(source.read(Window(0, 0, 157, 203)), image)


def test_overviews_are_listed(tmp_path):
    image = make_image((301, 257), "uint16")
    path = write_raster(tmp_path / "ov.tif", image, tiled=True, blockxsize=64, blockysize=64)
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4])
    facts = api.info(path)
    assert facts["overviews"] == [2, 4]
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split(None, 1)[1] for line in result.output.splitlines()}
    assert lines["reader"] == "tifffile"
    assert lines["crs"] == "EPSG:32633"
    assert lines["overviews"] == "2, 4"
    assert lines["resolution"] == "10.0, 10.0"
    assert lines["bounds"] == "500000.0, 4196990.0, 502570.0, 4200000.0"


def test_not_a_raster_names_the_file_and_gdals_reason(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is text, not an image\n")
    with pytest.raises(UnsupportedFormatError, match=r"notes.txt: not a TIFF.*nor a raster GDAL"):
        io.open_source(path)


def test_without_rasterio_the_error_says_how_to_install_it(tmp_path, monkeypatch, opened):
    jp2 = write_raster(
        tmp_path / "in.jp2", make_image((64, 64), "uint8"), driver="JP2OpenJPEG", QUALITY=100
    )
    geotiff = write_raster(tmp_path / "geo.tif", make_image((64, 64), "uint8"))
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio now fails
    _raster._tiff_georef.cache_clear()
    with pytest.raises(UnsupportedFormatError, match=r"JPEG2000.*pip install 'tilewise\[geo\]'"):
        io.open_source(jp2)
    source = opened(geotiff)  # the pixels still read; the georeferencing cannot
    with pytest.raises(UnsupportedFormatError, match=r"geo.tif: a GeoTIFF.*tilewise\[geo\]"):
        _ = source.georef
    assert "tilewise[geo]" in source.info()["georef"]
    _raster._tiff_georef.cache_clear()


def test_georef_round_trips_through_a_dict_and_pickle(tmp_path, opened):
    import pickle

    path = write_raster(
        tmp_path / "in.tif", make_image((40, 50), "float32"), nodata=math.nan, descriptions=("hh",)
    )
    georef = opened(path).georef
    assert georef is not None
    again = type(georef).from_dict(georef.to_dict())
    assert again.to_dict() == georef.to_dict() and math.isnan(again.nodata or 0.0)
    assert pickle.loads(pickle.dumps(georef)).to_dict() == georef.to_dict()
    attrs = georef.spatial_ref_attrs()
    assert attrs["crs_wkt"] == georef.crs_wkt
    assert attrs["GeoTransform"] == "500000.0 10.0 0.0 4200000.0 0.0 -10.0"


def test_window_and_scale_move_the_transform_as_rasterio_does(tmp_path, opened):
    path = write_raster(tmp_path / "in.tif", make_image((40, 50), "uint8"))
    georef = opened(path).georef
    assert georef is not None
    with rasterio.open(path) as ds:
        expected = ds.transform @ Affine.translation(7, 3)  # rasterio.windows.transform
        moved = georef.window(Window(3, 7, 10, 10)).transform
        halved = georef.scaled(1, 2).transform
        assert moved is not None and halved is not None
        assert moved.coefficients() == tuple(expected)[:6]
        assert halved.bounds((20, 25)) == tuple(ds.bounds)
        assert halved.resolution == (20.0, 20.0)


def test_a_tiff_tifffile_refuses_goes_to_rasterio(tmp_path, monkeypatch, opened):
    from tilewise.io import _tiff

    image = make_image((64, 80), "uint16", 3)
    path = write_raster(tmp_path / "in.tif", image, compress="deflate")  # not read whole

    def refuse(self, spec):
        raise NoDecoderError(f"{spec.path}: unsupported sample format (stand-in)")

    monkeypatch.setattr(_tiff.TiffSource, "__init__", refuse)
    source = opened(path)
    assert source.reader == "rasterio (GDAL GTiff driver)"
    np.testing.assert_array_equal(source.read(Window(0, 0, 64, 80)), image)
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(UnsupportedFormatError, match=r"stand-in\); GDAL may read it: pip"):
        io.open_source(path)
