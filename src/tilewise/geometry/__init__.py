"""Pure geometry: windows, tiles and layouts. No I/O, no pixels."""

from tilewise.geometry.grid import Grid, Layout, Tile, parse_tile_shape
from tilewise.geometry.stages import Stage, StageMap
from tilewise.geometry.transform import GeoTransform
from tilewise.geometry.window import Window

__all__ = [
    "GeoTransform",
    "Grid",
    "Layout",
    "Stage",
    "StageMap",
    "Tile",
    "Window",
    "parse_tile_shape",
]
