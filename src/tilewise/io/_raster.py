"""Any raster GDAL reads (GeoTIFF, COG, JPEG2000, ENVI, NITF, VRT, ...), through rasterio.

An optional backend (``pip install 'tilewise[geo]'``): rasterio is imported when
a file needs it, never by ``import tilewise``.

Which reader reads a file is decided by its content (``io.open_source``):

* TIFFs go to tifffile (``TiffSource``/``WholeTiffSource``), also when they are
  GeoTIFFs: their pixels are GDAL's (both decode the first IFD as stored), read
  as fast (4096² uint16 Deflate, 512² blocks, 1000² tiles with halo: 0.22 s
  both), and tifffile's reader names a corrupt tile, keeps the bad-input
  behaviour of plain TIFFs and needs no optional dependency. Their
  *georeferencing* is read here, by rasterio, because turning GeoKeys into a
  CRS is PROJ's job, not something to re-implement (:func:`tiff_georef`).
* A TIFF that tifffile refuses and every format tifffile, Zarr, NumPy and
  Pillow do not read come to :class:`RasterSource`.

GDAL datasets are neither picklable nor fork-safe: like every Source, a
RasterSource is reopened by path in each worker (and cached per process by
``io.cached_source``).
"""

from __future__ import annotations

import functools
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tilewise.errors import CorruptInputError, UnsupportedFormatError
from tilewise.geometry import GeoTransform, Window
from tilewise.io.base import Array, Source, SourceSpec, too_many_pixels
from tilewise.io.georef import Georef

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["INSTALL_HINT", "RasterSource", "available", "georef_of", "tiff_georef"]

INSTALL_HINT = "pip install 'tilewise[geo]'"


def available() -> bool:
    """Whether rasterio can be imported."""
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def _rasterio() -> Any:
    try:
        import rasterio
    except ImportError as err:
        raise UnsupportedFormatError(
            f"reading this file needs GDAL through rasterio, which is not installed; "
            f"install it with: {INSTALL_HINT}"
        ) from err
    return rasterio


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence rasterio's NotGeoreferencedWarning: a plain image is not a mistake."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _open(path: Path) -> Any:
    rasterio = _rasterio()
    from rasterio.errors import RasterioError

    try:
        with _quiet():
            return rasterio.open(path)
    except RasterioError as err:
        raise UnsupportedFormatError(f"{path}: not a raster GDAL reads ({err})") from err


class RasterSource(Source):
    """A raster read by window through rasterio (GDAL), bands interleaved last."""

    format_name = "gdal"
    reader = "rasterio"

    def __init__(self, spec: SourceSpec) -> None:
        self.path = Path(spec.path)
        self._ds = _open(self.path)
        try:
            self._check(spec)
        except Exception:
            self._ds.close()
            raise
        self._georef: Georef | None = None
        self.reader = f"rasterio (GDAL {self.driver} driver)"

    def _check(self, spec: SourceSpec) -> None:
        ds = self._ds
        if ds.count == 0:
            subdatasets = ", ".join(ds.subdatasets[:5]) or "none"
            raise UnsupportedFormatError(
                f"{self.path}: a container without raster bands of its own ({ds.driver}); "
                f"give one of its subdatasets instead: {subdatasets}"
            )
        if len(set(ds.dtypes)) != 1:
            raise UnsupportedFormatError(
                f"{self.path}: bands of different types {ds.dtypes}; tilewise reads images "
                "whose bands share one type (convert with gdal_translate -ot)"
            )
        dtype = np.dtype(ds.dtypes[0])
        if dtype.kind == "c":
            raise UnsupportedFormatError(
                f"{self.path}: complex samples ({dtype.name}, e.g. SAR single-look complex); "
                "convert to intensity first (e.g. gdal_calc.py or gdal_translate with a VRT "
                "pixel function)"
            )
        self.shape = (int(ds.height), int(ds.width))
        self.bands = int(ds.count)
        self.dtype = dtype
        if self.shape[0] * self.shape[1] > spec.max_pixels:
            raise too_many_pixels(self.path, self.shape, spec.max_pixels)

    @property
    def driver(self) -> str:
        """GDAL's driver name (``GTiff``, ``JP2OpenJPEG``, ``ENVI``, ``VRT``...)."""
        return str(self._ds.driver)

    @property
    def chunks(self) -> tuple[int, int]:
        rows, cols = self._ds.block_shapes[0]
        return (int(rows), int(cols))

    @property
    def compression(self) -> str | None:
        compression = self._ds.compression
        return None if compression is None else str(compression.name)

    @property
    def overviews(self) -> list[int]:
        """Decimation factors of the overviews (reduced-resolution copies) the file holds."""
        return [int(f) for f in self._ds.overviews(1)]

    @property
    def georef(self) -> Georef:
        if self._georef is None:
            self._georef = georef_of(self._ds)
        return self._georef

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["driver"] = self.driver
        info["overviews"] = self.overviews
        return info

    def read(self, window: Window, plane: int | None = None) -> Array:
        from rasterio.errors import RasterioError
        from rasterio.windows import Window as RioWindow

        try:
            with _quiet():
                data = self._ds.read(
                    window=RioWindow(window.col, window.row, window.width, window.height)
                )
        except RasterioError as err:
            raise CorruptInputError(f"{self.path}: cannot read {window}: {err}") from err
        if self.bands == 1:
            return np.asarray(data[0])
        return np.ascontiguousarray(np.moveaxis(data, 0, -1))

    def close(self) -> None:
        self._ds.close()


def georef_of(ds: Any) -> Georef:
    """The georeferencing of an open rasterio dataset."""
    crs = ds.crs
    transform = ds.transform
    georeferenced = crs is not None or not transform.is_identity
    nodatas = set(ds.nodatavals)
    if len(nodatas) > 1 and not all(v is not None and np.isnan(v) for v in nodatas):
        raise UnsupportedFormatError(
            f"{ds.name}: bands have different nodata values {ds.nodatavals}; tilewise "
            "carries one nodata value per image (set one with gdal_edit.py -a_nodata)"
        )
    nodata = ds.nodatavals[0]
    with _quiet():
        epsg = crs.to_epsg() if crs is not None else None
    return Georef(
        band_count=int(ds.count),
        crs_epsg=int(epsg) if epsg is not None else None,
        crs_wkt=crs.to_wkt() if crs is not None else "",
        transform=GeoTransform(*transform[:6]) if georeferenced else None,
        nodata=None if nodata is None else float(nodata),
        descriptions=tuple(d or "" for d in ds.descriptions),
        colorinterp=tuple(c.name.lower() for c in ds.colorinterp),
        scales=tuple(float(s) for s in ds.scales),
        offsets=tuple(float(o) for o in ds.offsets),
        tags=tuple(sorted((str(k), str(v)) for k, v in ds.tags().items())),
    )


def tiff_georef(path: Path) -> Georef:
    """The georeferencing of a GeoTIFF whose pixels tifffile reads (module docstring).

    Read once per file version and process (the main process asks for it more than once).
    """
    st = path.stat()
    return _tiff_georef(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _tiff_georef(path: str, size: int, mtime_ns: int) -> Georef:
    try:
        import rasterio  # noqa: F401
    except ImportError as err:
        raise UnsupportedFormatError(
            f"{path}: a GeoTIFF (its tags hold a CRS, transform or nodata); reading its "
            f"georeferencing needs rasterio, which is not installed: {INSTALL_HINT}"
        ) from err
    ds = _open(Path(path))
    try:
        return georef_of(ds)
    finally:
        ds.close()
