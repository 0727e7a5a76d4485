"""Tile layouts: how an image is cut into tiles, each with a core and a read window."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from tilewise.errors import GeometryError
from tilewise.geometry.stages import StageMap
from tilewise.geometry.window import Window

__all__ = ["Grid", "Layout", "Tile", "parse_tile_shape"]

_TILE_RE = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$")


class Layout(StrEnum):
    """How the image is divided.

    ``rows`` cuts horizontal strips (each the full image width), ``columns``
    cuts vertical strips (each the full height), ``grid`` cuts both ways.
    """

    ROWS = "rows"
    COLUMNS = "columns"
    GRID = "grid"


def parse_tile_shape(value: str | int | tuple[int, int]) -> tuple[int, int]:
    """Parse a tile size: ``1024`` (square), ``"1024x512"`` (rows x cols) or a tuple.

    >>> parse_tile_shape("1000x333")
    (1000, 333)
    >>> parse_tile_shape(256)
    (256, 256)
    """
    if isinstance(value, bool):
        raise GeometryError(f"tile size must be a number or 'ROWSxCOLS', got {value!r}")
    if isinstance(value, int):
        shape = (value, value)
    elif isinstance(value, tuple):
        if len(value) != 2:
            raise GeometryError(f"tile shape needs 2 values (rows, cols), got {value!r}")
        shape = (int(value[0]), int(value[1]))
    else:
        match = _TILE_RE.match(str(value))
        if match is None:
            raise GeometryError(
                f"tile size must look like 1024 or 1024x512 (rows x cols), got {value!r}"
            )
        rows = int(match.group(1))
        shape = (rows, int(match.group(2)) if match.group(2) else rows)
    if shape[0] <= 0 or shape[1] <= 0:
        raise GeometryError(f"tile size must be positive, got {shape[0]}x{shape[1]}")
    return shape


@dataclass(frozen=True, slots=True)
class Tile:
    """One unit of work.

    ``core`` is the region of the output this tile owns (cores cover the image
    exactly once); ``read`` is the core grown by the pipeline's halo and clipped
    to the image: the pixels the worker reads. In a stack, ``plane`` is the
    number of the plane the windows lie in (None for a 2-D image).
    """

    index: int
    core: Window
    read: Window
    plane: int | None = None

    def __reduce__(self) -> tuple[type[Tile], tuple[int, Window, Window, int | None]]:
        # by its fields: thousands of tiles travel in runs, and the default is slow
        return (Tile, (self.index, self.core, self.read, self.plane))

    @property
    def core_in_read(self) -> Window:
        """The core in the coordinates of the read window (what to crop after the ops)."""
        return self.core.relative_to(self.read)

    def __str__(self) -> str:
        where = "" if self.plane is None else f"plane {self.plane}, "
        return f"tile {self.index} ({where}{self.core})"


@dataclass(frozen=True, slots=True)
class Grid:
    """The tiling of an image of ``image_shape`` into tiles of at most ``tile_shape``.

    Tiles are numbered row-major. Edge tiles may be smaller than ``tile_shape``.
    With ``rows`` the tile width is the image width; with ``columns`` the tile
    height is the image height. A stack of ``planes`` 2-D planes is tiled the same
    way in each plane: tile ``i`` lies in plane ``i // tiles_per_plane``.

    >>> g = Grid((10, 7), (4, 4), Layout.GRID, halo=1)
    >>> len(g), g.counts
    (6, (3, 2))
    >>> g.tile(5).core, g.tile(5).read
    (Window(row=8, col=4, height=2, width=3), Window(row=7, col=3, height=3, width=4))
    >>> s = Grid((10, 7), (4, 4), Layout.GRID, halo=1, planes=3)
    >>> len(s), s.tile(7).plane, s.tile(7).core == g.tile(1).core
    (18, 1, True)
    """

    image_shape: tuple[int, int]
    tile_shape: tuple[int, int]
    layout: Layout = Layout.GRID
    halo: int = 0
    #: For pipelines whose ops change the scale: ``image_shape`` is then the output's
    #: shape, and read windows (in the input) come from the stages instead of ``halo``.
    stages: StageMap | None = None
    #: Planes of a stack (each tiled alike); 1 for a 2-D image.
    planes: int = 1

    def __post_init__(self) -> None:
        if len(self.image_shape) != 2 or min(self.image_shape) <= 0:
            raise GeometryError(f"image shape must be 2 positive numbers, got {self.image_shape}")
        if len(self.tile_shape) != 2 or min(self.tile_shape) <= 0:
            raise GeometryError(f"tile shape must be 2 positive numbers, got {self.tile_shape}")
        if self.halo < 0:
            raise GeometryError(f"halo must not be negative, got {self.halo}")
        if self.planes < 1:
            raise GeometryError(f"a grid needs 1 or more planes, got {self.planes}")
        object.__setattr__(self, "layout", Layout(self.layout))
        if self.stages is not None and self.stages.output_shape != tuple(self.image_shape):
            raise GeometryError(
                f"grid shape {self.image_shape} differs from the stages' output "
                f"{self.stages.output_shape}"
            )

    @property
    def effective_tile_shape(self) -> tuple[int, int]:
        """Tile shape after the layout is applied and clipped to the image."""
        height, width = self.image_shape
        rows, cols = self.tile_shape
        if self.layout is Layout.ROWS:
            cols = width
        elif self.layout is Layout.COLUMNS:
            rows = height
        return (min(rows, height), min(cols, width))

    @property
    def counts(self) -> tuple[int, int]:
        """Number of tiles down and across."""
        rows, cols = self.effective_tile_shape
        return (math.ceil(self.image_shape[0] / rows), math.ceil(self.image_shape[1] / cols))

    @property
    def per_plane(self) -> int:
        """Tiles in one plane."""
        down, across = self.counts
        return down * across

    def __len__(self) -> int:
        return self.per_plane * self.planes

    def tile(self, index: int) -> Tile:
        """The tile numbered ``index`` (row-major, plane after plane)."""
        # the shape once (not through len, per_plane and counts): the main process asks
        # for every tile twice, at a few thousand tiles a second on a large cluster
        rows, cols = self.effective_tile_shape
        across = math.ceil(self.image_shape[1] / cols)
        per_plane = math.ceil(self.image_shape[0] / rows) * across
        if not 0 <= index < per_plane * self.planes:
            raise GeometryError(f"tile index {index} is outside 0..{len(self) - 1}")
        plane: int | None = None
        if self.planes > 1:
            plane, index_in_plane = divmod(index, per_plane)
        else:
            index_in_plane = index
        r0 = (index_in_plane // across) * rows
        c0 = (index_in_plane % across) * cols
        core = Window(
            r0, c0, min(rows, self.image_shape[0] - r0), min(cols, self.image_shape[1] - c0)
        )
        if self.stages is not None:
            return Tile(index, core, self.stages.windows(core)[0], plane)
        return Tile(index, core, core.grow(self.halo, bounds=self.image_shape), plane)

    def __iter__(self) -> Iterator[Tile]:
        for index in range(len(self)):
            yield self.tile(index)

    @property
    def source_shape(self) -> tuple[int, int]:
        """Shape of the image read windows refer to (the input)."""
        return self.stages.input_shape if self.stages is not None else self.image_shape

    def read_pixels(self) -> int:
        """Total pixels read over all tiles (cores plus halos), in one plane."""
        return sum(self.tile(i).read.area for i in range(self.per_plane))

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form for reports and fingerprints."""
        extra: dict[str, object] = {}
        if self.stages is not None:
            extra = {
                "input_shape": list(self.stages.input_shape),
                "stages": [[s.halo, s.up, s.down] for s in self.stages.stages],
            }
        return {
            **extra,
            "image_shape": list(self.image_shape),
            "tile_shape": list(self.effective_tile_shape),
            "layout": self.layout.value,
            "halo": self.halo,
            "tiles": len(self),
            "counts": list(self.counts),
            **({"planes": self.planes} if self.planes > 1 else {}),
        }
