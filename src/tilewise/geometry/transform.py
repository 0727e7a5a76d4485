"""Affine geotransforms: pixel (row, column) to map coordinates, and how tiling moves them.

The six coefficients follow rasterio's ``Affine`` (and the GeoTIFF model transform)::

    x = a * col + b * row + c
    y = d * col + e * row + f

so ``(c, f)`` is the map position of the top-left corner of pixel ``(0, 0)`` and,
for a north-up image, ``a`` is the pixel width and ``e`` the (negative) pixel
height. GDAL orders the same numbers ``(c, a, b, f, d, e)``
(:meth:`GeoTransform.from_gdal`, :meth:`GeoTransform.to_gdal`).

Pure arithmetic: a window of an image has the transform of its own pixel grid
(:meth:`GeoTransform.window`), and an integer rescale keeps the origin and
multiplies the pixel size (:meth:`GeoTransform.scaled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tilewise.errors import GeometryError
from tilewise.geometry.window import Window

__all__ = ["GeoTransform"]


@dataclass(frozen=True, slots=True)
class GeoTransform:
    """An affine map from pixel (row, col) corners to map (x, y) coordinates.

    >>> t = GeoTransform(10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0)
    >>> t.xy(0, 0), t.xy(2, 3)
    ((500000.0, 4200000.0), (500030.0, 4199980.0))
    >>> t.window(Window(2, 3, 4, 4)).xy(0, 0)
    (500030.0, 4199980.0)
    >>> t.scaled(1, 2).resolution
    (20.0, 20.0)
    >>> t.bounds((100, 200))
    (500000.0, 4199000.0, 502000.0, 4200000.0)
    """

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    def __post_init__(self) -> None:
        values = (self.a, self.b, self.c, self.d, self.e, self.f)
        if not all(math.isfinite(v) for v in values):
            raise GeometryError(f"geotransform coefficients must be finite, got {values}")
        if self.a * self.e - self.b * self.d == 0:
            raise GeometryError(f"geotransform {values} is degenerate (determinant 0)")

    @classmethod
    def from_gdal(cls, gt: tuple[float, float, float, float, float, float]) -> GeoTransform:
        """From GDAL's order ``(c, a, b, f, d, e)``.

        >>> GeoTransform.from_gdal((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)).a
        10.0
        """
        c, a, b, f, d, e = (float(v) for v in gt)
        return cls(a, b, c, d, e, f)

    def to_gdal(self) -> tuple[float, float, float, float, float, float]:
        """GDAL's order ``(c, a, b, f, d, e)``."""
        return (self.c, self.a, self.b, self.f, self.d, self.e)

    def coefficients(self) -> tuple[float, float, float, float, float, float]:
        """``(a, b, c, d, e, f)``, the order of rasterio's ``Affine``."""
        return (self.a, self.b, self.c, self.d, self.e, self.f)

    def xy(self, row: float, col: float) -> tuple[float, float]:
        """Map coordinates of the pixel-grid point ``(row, col)``: a corner (+0.5: a centre)."""
        return (
            self.a * col + self.b * row + self.c,
            self.d * col + self.e * row + self.f,
        )

    def window(self, window: Window) -> GeoTransform:
        """The transform of ``window``'s own pixel grid (its pixel ``(0, 0)`` is ``window``'s
        corner)."""
        c, f = self.xy(window.row, window.col)
        return GeoTransform(self.a, self.b, c, self.d, self.e, f)

    def placed(
        self, row: float, col: float, row_step: float = 1.0, col_step: float = 1.0
    ) -> GeoTransform:
        """The transform of a grid whose corner ``(r, c)`` is this grid's
        ``(row + r * row_step, col + c * col_step)``.

        ``row``/``col`` may lie outside the image (a padded image starts before it).

        >>> t = GeoTransform(10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0)
        >>> t.placed(-2, -3).xy(0, 0), t.placed(0, 0, 4, 2).resolution
        ((499970.0, 4200020.0), (20.0, 40.0))
        """
        c, f = self.xy(row, col)
        return GeoTransform(
            self.a * col_step, self.b * row_step, c, self.d * col_step, self.e * row_step, f
        )

    def scaled(self, up: int, down: int) -> GeoTransform:
        """The transform after resizing the image by ``up / down`` per side, same origin.

        Pixels grow by ``down / up``: ``scaled(1, 2)`` (half the pixels per side) doubles
        the pixel size. Exact when ``up`` is a power of two and ``v * down`` is exact,
        else within two roundings.
        """
        if up < 1 or down < 1:
            raise GeometryError(f"scale factors must be positive integers, got {up}/{down}")
        a, b, d, e = (v * down / up for v in (self.a, self.b, self.d, self.e))
        return GeoTransform(a, b, self.c, d, e, self.f)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size along x (columns) and y (rows), positive, in map units."""
        return (math.hypot(self.a, self.d), math.hypot(self.b, self.e))

    @property
    def north_up(self) -> bool:
        """Whether columns run along x and rows along y (no rotation or shear)."""
        return self.b == 0 and self.d == 0

    def bounds(self, shape: tuple[int, int]) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of an image of ``shape`` (rows, cols), as rasterio."""
        rows, cols = shape
        corners = [self.xy(r, c) for r in (0, rows) for c in (0, cols)]
        xs = [x for x, _ in corners]
        ys = [y for _, y in corners]
        return (min(xs), min(ys), max(xs), max(ys))
