"""GeoTIFF tags for a :class:`~tilewise.io.Georef`, encoded by GDAL, written by tifffile.

GDAL (through rasterio) writes the georeferencing of a one-pixel GeoTIFF in
memory with the output's band count, dtype and photometric interpretation; its
GeoKeyDirectory, ModelPixelScale/ModelTiepoint (or ModelTransformation),
GDAL_METADATA (band descriptions, scales, offsets, colour interpretations,
dataset tags) and GDAL_NODATA tags are then copied, as they are, into the output's
first IFD by the one writer that places the tiles' bytes. GDAL reads back exactly
what GDAL wrote, and the workers keep encoding their own tiles.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import tifffile

from tilewise.errors import UnsupportedFormatError
from tilewise.io.georef import Georef

__all__ = ["GeoTiffTags", "geotiff_tags"]

#: Tags GDAL writes for georeferencing, metadata and nodata.
_COPIED = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)
_RGB = ("red", "green", "blue")


@dataclass(frozen=True, slots=True)
class GeoTiffTags:
    """What tifffile needs to write a GeoTIFF's first IFD."""

    photometric: str
    #: TIFF ExtraSamples values for the samples beyond the photometric's own.
    extrasamples: tuple[int, ...]
    #: ``(code, dtype, count, value, writeonce)`` for ``TiffWriter.write(extratags=...)``.
    extratags: tuple[tuple[int, int, int, Any, bool], ...]


def photometric_for(georef: Georef) -> str:
    """``"rgb"`` when the first three bands are red, green and blue, else ``"minisblack"``."""
    return "rgb" if georef.colorinterp[:3] == _RGB else "minisblack"


def geotiff_tags(georef: Georef, dtype: str) -> GeoTiffTags:
    """Encode ``georef`` for an image of ``dtype`` as GDAL writes it.

    Raises
    ------
    UnsupportedFormatError
        rasterio is not installed (it was, to read the georeferencing).
    """
    try:
        import rasterio
        from rasterio.enums import ColorInterp
        from rasterio.io import MemoryFile
        from rasterio.transform import Affine
    except ImportError as err:  # pragma: no cover - the Georef came from rasterio
        raise UnsupportedFormatError(
            f"writing georeferencing needs rasterio: pip install 'tilewise[geo]' ({err})"
        ) from err
    photometric = photometric_for(georef)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": 1,
        "height": 1,
        "count": georef.band_count,
        "dtype": dtype,
        "photometric": photometric.upper(),
    }
    if georef.crs_wkt or georef.crs_epsg is not None:
        profile["crs"] = rasterio.CRS.from_user_input(georef.crs_wkt or georef.crs)
    if georef.transform is not None:
        profile["transform"] = Affine(*georef.transform.coefficients())
    if georef.nodata is not None:
        profile["nodata"] = georef.nodata
    with MemoryFile() as memory:
        with memory.open(**profile) as ds:
            if any(georef.descriptions):
                ds.descriptions = georef.descriptions
            if georef.colorinterp:
                ds.colorinterp = [ColorInterp[name] for name in georef.colorinterp]
            if georef.scales:
                ds.scales = georef.scales
            if georef.offsets:
                ds.offsets = georef.offsets
            if georef.tags:
                ds.update_tags(**dict(georef.tags))
        data = memory.read()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tags = tif.pages.first.tags
        extrasamples = tags.get(338)
        extra = () if extrasamples is None else tuple(int(v) for v in _seq(extrasamples.value))
        extratags = tuple(
            (code, int(tags[code].dtype), _count(tags[code]), tags[code].value, True)
            for code in _COPIED
            if code in tags
        )
    return GeoTiffTags(photometric, extra, extratags)


def _seq(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _count(tag: Any) -> int:
    return 0 if int(tag.dtype) == 2 else int(tag.count)  # tifffile counts ASCII itself
