"""The planes of a stack: its leading axes, and which of their planes a run reads.

A stack is an image with leading axes before its rows and columns (and bands):
``(Z, Y, X)``, ``(T, Z, C, Y, X)``... Each plane is one 2-D image, tiled and
processed like any other. Planes are numbered in C order over the leading axes
*as selected* (``--planes``, ``--page``); :meth:`Planes.stored_index` turns that
number into the plane's coordinates in the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tilewise.errors import GeometryError

__all__ = ["AXIS_LETTERS", "Planes", "parse_plane_range"]

_RANGE_RE = re.compile(r"^\s*(-?\d*)\s*(?::\s*(-?\d*)\s*(?::\s*(\d*)\s*)?)?$")

#: Axis letters a stack may name (tifffile's): time, depth, channel, sample, series, ...
AXIS_LETTERS = "TZCSIQRPHEALVMUWGF"


def parse_plane_range(text: str) -> tuple[int | None, int | None, int]:
    """Parse ``--planes``: ``START:STOP[:STEP]`` or a single ``N``, as Python slices them.

    >>> parse_plane_range("0:10"), parse_plane_range("3"), parse_plane_range("::2")
    ((0, 10, 1), (3, 4, 1), (None, None, 2))
    >>> parse_plane_range("-1")
    (-1, None, 1)
    """
    match = _RANGE_RE.match(str(text))
    if match is None or not str(text).strip():
        raise GeometryError(f"--planes must look like 0:10, 5 or 0:10:2, got {text!r}")
    start_text, stop_text, step_text = match.groups()
    if stop_text is None and ":" not in str(text):  # a single plane: N
        if not start_text:
            raise GeometryError(f"--planes must look like 0:10, 5 or 0:10:2, got {text!r}")
        start = int(start_text)
        return (start, None if start == -1 else start + 1, 1)
    step = int(step_text) if step_text else 1
    if step < 1:
        raise GeometryError(f"--planes step must be 1 or more, got {step}")
    return (
        int(start_text) if start_text else None,
        int(stop_text) if stop_text else None,
        step,
    )


@dataclass(frozen=True, slots=True)
class Planes:
    """The leading axes of a stack, and which of its planes are read.

    Parameters
    ----------
    stored : tuple of int
        Shape of the leading axes in the file, e.g. ``(3, 2)``.
    axes : str
        Their letters, one per axis, e.g. ``"ZC"``.
    select : tuple of int, optional
        ``(start, stop, step)`` along the first leading axis (``--planes``), resolved
        against its length: the planes read. Default: all.
    page : int, optional
        One plane by its number in the file (C order over ``stored``; ``--page``):
        the run reads a 2-D image.

    >>> p = Planes((3, 2), "ZC", select=(1, 3, 1))
    >>> p.shape, p.count, p.stored_index(3)
    ((2, 2), 4, (2, 1))
    >>> Planes((6,), "I", page=4).shape, Planes((6,), "I", page=4).stored_flat(0)
    ((), 4)
    """

    stored: tuple[int, ...]
    axes: str
    select: tuple[int, int, int] | None = None
    page: int | None = None

    def __post_init__(self) -> None:
        if not self.stored or min(self.stored) < 1:
            raise GeometryError(f"a stack needs leading axes of length 1 or more: {self.stored}")
        if len(self.axes) != len(self.stored):
            raise GeometryError(f"axes {self.axes!r} do not name the leading shape {self.stored}")
        if self.select is not None and self.page is not None:
            raise GeometryError("--planes and --page select planes two ways; give one")
        if self.select is not None:
            start, stop, step = self.select
            if not (0 <= start < stop <= self.stored[0] and step >= 1):
                raise GeometryError(f"plane range {start}:{stop}:{step} is not within the stack")
        if self.page is not None and not 0 <= self.page < math.prod(self.stored):
            raise GeometryError(
                f"--page {self.page}: the stack has {math.prod(self.stored)} planes "
                f"(0 to {math.prod(self.stored) - 1})"
            )

    @classmethod
    def selected(
        cls,
        stored: tuple[int, ...],
        axes: str,
        planes: tuple[int | None, int | None, int] | None = None,
        page: int | None = None,
    ) -> Planes:
        """The planes of ``stored`` that ``--planes`` (a :func:`parse_plane_range`) or
        ``--page`` choose; an empty or out-of-range choice is a :class:`GeometryError`.

        >>> Planes.selected((10, 2), "TC", (-3, None, 1)).select
        (7, 10, 1)
        """
        if planes is None:
            return cls(stored, axes, page=page)
        first = stored[0]
        start, stop, step = planes
        if (start is not None and not -first <= start < first) or (
            stop is not None and stop > first
        ):
            raise GeometryError(
                f"--planes {_text(planes)}: the stack's first axis ({axes[0]}) has {first} "
                f"planes (0 to {first - 1})"
            )
        resolved = range(first)[slice(start, stop, step)]
        if not resolved:
            raise GeometryError(f"--planes {_text(planes)} selects no plane of {first}")
        last = resolved[-1] + 1
        return cls(stored, axes, select=(resolved.start, last, resolved.step), page=page)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the leading axes read: ``()`` for one ``page``."""
        if self.page is not None:
            return ()
        if self.select is None:
            return self.stored
        start, stop, step = self.select
        return (len(range(start, stop, step)), *self.stored[1:])

    @property
    def out_axes(self) -> str:
        """The letters of the leading axes read (``""`` for one page)."""
        return "" if self.page is not None else self.axes

    @property
    def count(self) -> int:
        """How many planes are read."""
        return math.prod(self.shape)

    def stored_index(self, plane: int) -> tuple[int, ...]:
        """The coordinates in the file of plane ``plane`` (numbered in the selection)."""
        if self.page is not None:
            return _unravel(self.page, self.stored)
        coords = _unravel(plane, self.shape)
        if self.select is None:
            return coords
        start, _, step = self.select
        return (start + coords[0] * step, *coords[1:])

    def stored_flat(self, plane: int) -> int:
        """The number in the file (C order over ``stored``) of plane ``plane``."""
        flat = 0
        for coord, size in zip(self.stored_index(plane), self.stored, strict=True):
            flat = flat * size + coord
        return flat

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form for reports and fingerprints."""
        data: dict[str, object] = {"axes": self.axes, "stored": list(self.stored)}
        if self.select is not None:
            data["select"] = list(self.select)
        if self.page is not None:
            data["page"] = self.page
        return data


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    coords = []
    for size in reversed(shape):
        index, coord = divmod(index, size)
        coords.append(coord)
    return tuple(reversed(coords))


def _text(planes: tuple[int | None, int | None, int]) -> str:
    start, stop, step = planes
    text = f"{'' if start is None else start}:{'' if stop is None else stop}"
    return text + (f":{step}" if step != 1 else "")
