"""Georeferencing as a small value: what a map needs to place an image, and what a sink writes.

:class:`Georef` is frozen, hashable and picklable, so it can travel in a
plan or a sink spec. It holds no library objects: the CRS is an EPSG code (when
the CRS is one) and its WKT, the transform a
:class:`~tilewise.geometry.GeoTransform`. A Source fills it from the file
(rasterio/GDAL reads it: ``io._raster.georef_of``); a sink writes it back:

* GeoTIFF through rasterio: ``crs=georef.crs``, ``transform=Affine(*georef.transform
  .coefficients())``, ``nodata``, ``descriptions``, ``colorinterp``, ``scales``,
  ``offsets`` and ``update_tags(**dict(georef.tags))``;
* Zarr attributes: :meth:`Georef.to_dict` under a ``tilewise:georef`` key, plus the
  CF grid-mapping attributes rioxarray writes (:meth:`Georef.spatial_ref_attrs`).

Ops that move or resize pixels map it with :meth:`Georef.window` and :meth:`Georef.scaled`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tilewise.errors import GeometryError
from tilewise.geometry import GeoTransform, Window

__all__ = ["Georef"]


@dataclass(frozen=True, slots=True)
class Georef:
    """Where an image lies on the Earth and what its bands mean.

    Every per-band tuple has one entry per band (``band_count``). Empty strings
    stand for a band without a description.

    >>> g = Georef(band_count=1, crs_epsg=4326, transform=GeoTransform(0.5, 0, -180, 0, -0.5, 90))
    >>> g.crs, g.scaled(1, 2).transform.resolution
    ('EPSG:4326', (1.0, 1.0))
    """

    band_count: int
    #: EPSG code when the CRS is (equivalent to) one, else None.
    crs_epsg: int | None = None
    #: The CRS as WKT (empty when the image has no CRS).
    crs_wkt: str = ""
    transform: GeoTransform | None = None
    #: The nodata value of every band (NaN for floats is a value too), or None.
    nodata: float | None = None
    descriptions: tuple[str, ...] = ()
    #: GDAL colour interpretation per band, lower case: gray, red, green, blue, alpha, undefined...
    colorinterp: tuple[str, ...] = ()
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()
    #: Dataset metadata (GDAL's default domain), sorted by key.
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.band_count < 1:
            raise GeometryError(
                f"a georeferenced image needs at least one band, got {self.band_count}"
            )
        for name in ("descriptions", "colorinterp", "scales", "offsets"):
            values = getattr(self, name)
            if values and len(values) != self.band_count:
                raise GeometryError(
                    f"georef {name} has {len(values)} entries for {self.band_count} band(s)"
                )

    @property
    def crs(self) -> str | None:
        """``"EPSG:<code>"`` when there is a code, else the WKT; None without a CRS."""
        if self.crs_epsg is not None:
            return f"EPSG:{self.crs_epsg}"
        return self.crs_wkt or None

    @property
    def is_georeferenced(self) -> bool:
        """Whether the image has a CRS or a transform (else it lies only in pixel space)."""
        return bool(self.crs_wkt) or self.crs_epsg is not None or self.transform is not None

    def window(self, window: Window) -> Georef:
        """The georeferencing of ``window`` of this image (the transform moves; bands stay)."""
        if self.transform is None:
            return self
        return replace(self, transform=self.transform.window(window))

    def scaled(self, up: int, down: int) -> Georef:
        """The georeferencing after resizing by ``up / down`` per side (same origin)."""
        if self.transform is None:
            return self
        return replace(self, transform=self.transform.scaled(up, down))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (reports, Zarr attributes); :meth:`from_dict` reads it back."""
        return {
            "band_count": self.band_count,
            "crs": self.crs,
            "crs_epsg": self.crs_epsg,
            "crs_wkt": self.crs_wkt,
            "transform": list(self.transform.coefficients()) if self.transform else None,
            "nodata": _json_float(self.nodata),
            "descriptions": list(self.descriptions),
            "colorinterp": list(self.colorinterp),
            "scales": list(self.scales),
            "offsets": list(self.offsets),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Georef:
        """Inverse of :meth:`to_dict`."""
        transform = data.get("transform")
        nodata = data.get("nodata")
        return cls(
            band_count=int(data["band_count"]),
            crs_epsg=data.get("crs_epsg"),
            crs_wkt=data.get("crs_wkt", ""),
            transform=GeoTransform(*transform) if transform else None,
            nodata=None if nodata is None else float(nodata),
            descriptions=tuple(data.get("descriptions", ())),
            colorinterp=tuple(data.get("colorinterp", ())),
            scales=tuple(float(v) for v in data.get("scales", ())),
            offsets=tuple(float(v) for v in data.get("offsets", ())),
            tags=tuple(sorted(data.get("tags", {}).items())),
        )

    def facts(self, shape: tuple[int, int]) -> dict[str, Any]:
        """JSON-ready facts for ``tilewise info`` about an image of ``shape``."""
        facts: dict[str, Any] = {"crs": self.crs}
        if self.transform is not None:
            facts["transform"] = list(self.transform.coefficients())
            facts["resolution"] = list(self.transform.resolution)
            facts["bounds"] = list(self.transform.bounds(shape))
        facts["nodata"] = _json_float(self.nodata)
        if any(self.descriptions):
            facts["band_descriptions"] = list(self.descriptions)
        if self.colorinterp:
            facts["colorinterp"] = list(self.colorinterp)
        if any(s != 1 for s in self.scales) or any(o != 0 for o in self.offsets):
            facts["scales"] = list(self.scales)
            facts["offsets"] = list(self.offsets)
        return facts

    def spatial_ref_attrs(self) -> dict[str, str]:
        """The CF grid-mapping attributes rioxarray writes on its ``spatial_ref`` variable.

        ``crs_wkt`` and ``spatial_ref`` hold the WKT, ``GeoTransform`` GDAL's six
        numbers separated by spaces (how rioxarray and GDAL's netCDF/Zarr drivers
        find the transform).
        """
        attrs: dict[str, str] = {}
        if self.crs_wkt:
            attrs["crs_wkt"] = attrs["spatial_ref"] = self.crs_wkt
        if self.transform is not None:
            attrs["GeoTransform"] = " ".join(repr(v) for v in self.transform.to_gdal())
        return attrs


def _json_float(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: write them as GDAL writes nodata, as text."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
