"""Rectangular pixel windows in (row, column) space."""

from __future__ import annotations

from dataclasses import dataclass

from tilewise.errors import GeometryError

__all__ = ["Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """A rectangle of pixels: top-left corner ``(row, col)`` and size ``(height, width)``.

    Windows are half-open: rows ``row .. row + height - 1`` are inside.

    >>> Window(10, 20, 5, 6).slices
    (slice(10, 15, None), slice(20, 26, None))
    >>> Window(0, 0, 4, 4).grow(2, bounds=(10, 10))
    Window(row=0, col=0, height=6, width=6)
    """

    row: int
    col: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.row < 0 or self.col < 0:
            raise GeometryError(f"window origin must not be negative, got ({self.row}, {self.col})")
        if self.height <= 0 or self.width <= 0:
            raise GeometryError(
                f"window size must be positive, got {self.height} x {self.width} "
                f"at ({self.row}, {self.col})"
            )

    def __reduce__(self) -> tuple[type[Window], tuple[int, int, int, int]]:
        # by its fields: a slotted dataclass's default pickling costs ~10 us a window
        return (Window, (self.row, self.col, self.height, self.width))

    @property
    def stop_row(self) -> int:
        """First row below the window."""
        return self.row + self.height

    @property
    def stop_col(self) -> int:
        """First column right of the window."""
        return self.col + self.width

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def area(self) -> int:
        """Number of pixels in the window."""
        return self.height * self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices selecting this window from an image."""
        return (slice(self.row, self.stop_row), slice(self.col, self.stop_col))

    def grow(self, halo: int, *, bounds: tuple[int, int]) -> Window:
        """Grow by ``halo`` pixels on every side, clipped to an image of shape ``bounds``."""
        if halo < 0:
            raise GeometryError(f"halo must not be negative, got {halo}")
        row = max(0, self.row - halo)
        col = max(0, self.col - halo)
        stop_row = min(bounds[0], self.stop_row + halo)
        stop_col = min(bounds[1], self.stop_col + halo)
        return Window(row, col, stop_row - row, stop_col - col)

    def contains(self, other: Window) -> bool:
        """Whether ``other`` lies entirely inside this window."""
        return (
            self.row <= other.row
            and self.col <= other.col
            and other.stop_row <= self.stop_row
            and other.stop_col <= self.stop_col
        )

    def relative_to(self, outer: Window) -> Window:
        """This window in the coordinates of ``outer``, which must contain it."""
        if not outer.contains(self):
            raise GeometryError(f"{self} is not inside {outer}")
        return Window(self.row - outer.row, self.col - outer.col, self.height, self.width)

    def scaled(self, factor: tuple[int, int] | int, *, divide: bool = False) -> Window:
        """Multiply (or exactly divide) origin and size by an integer factor."""
        fr, fc = (factor, factor) if isinstance(factor, int) else factor
        if not divide:
            return Window(self.row * fr, self.col * fc, self.height * fr, self.width * fc)
        if self.row % fr or self.height % fr or self.col % fc or self.width % fc:
            raise GeometryError(f"{self} is not divisible by {(fr, fc)}")
        return Window(self.row // fr, self.col // fc, self.height // fr, self.width // fc)

    def to_dict(self) -> dict[str, int]:
        """Plain-dict form for JSON reports."""
        return {"row": self.row, "col": self.col, "height": self.height, "width": self.width}

    def __str__(self) -> str:
        return f"rows {self.row}:{self.stop_row}, cols {self.col}:{self.stop_col}"
