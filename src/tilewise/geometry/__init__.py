"""Pure geometry: windows, tiles and layouts. No I/O, no pixels."""

from tilewise.geometry.grid import Grid, Layout, Tile, parse_tile_shape
from tilewise.geometry.stages import Stage, StageMap
from tilewise.geometry.window import Window

__all__ = ["Grid", "Layout", "Stage", "StageMap", "Tile", "Window", "parse_tile_shape"]
