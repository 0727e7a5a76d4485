"""Stage geometry: which input pixels an output window depends on, op by op.

A pipeline is a chain of stages. Stage ``i`` reads an image of shape
``shapes[i]`` and needs ``halo`` pixels of context around every output pixel;
it may scale the image by an integer factor (``up`` > 1 enlarges, ``down`` > 1
shrinks: a ``down`` x ``down`` block becomes one pixel).

Walking backwards from a tile's core in the output gives, for every stage, the
window of its input that determines that core exactly: the next stage's window
mapped back through the scale, grown by the halo and clipped to the image.
Windows entering a shrinking stage are aligned to its block size, so the tile
sees the same blocks as the whole image; an enlarging stage maps a window to
whole multiples of its factor, so the tile's output pixels sit on the same
sampling grid as the whole image's.

>>> m = StageMap((100, 80), (Stage(halo=2), Stage(down=2), Stage(halo=1)))
>>> m.output_shape
(50, 40)
>>> for window in m.windows(Window(10, 10, 10, 10)):
...     print(window)
rows 16:44, cols 16:44
rows 18:42, cols 18:42
rows 9:21, cols 9:21
rows 10:20, cols 10:20
"""

from __future__ import annotations

from dataclasses import dataclass

from tilewise.errors import GeometryError
from tilewise.geometry.window import Window

__all__ = ["Stage", "StageMap"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One op's geometry: context it needs (in its input pixels) and its integer scale."""

    halo: int = 0
    up: int = 1
    down: int = 1

    def __post_init__(self) -> None:
        if self.halo < 0:
            raise GeometryError(f"halo must not be negative, got {self.halo}")
        if self.up < 1 or self.down < 1 or (self.up > 1 and self.down > 1):
            raise GeometryError(
                f"a stage scales by an integer factor up or down, got up={self.up}, "
                f"down={self.down}"
            )


def _ceil_div(value: int, factor: int) -> int:
    return -(-value // factor)


@dataclass(frozen=True, slots=True)
class StageMap:
    """The stages of a pipeline applied to an input of ``input_shape``."""

    input_shape: tuple[int, int]
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        self.shapes  # noqa: B018 - validates divisibility now, with a clear message

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Input shape of every stage, then the output shape."""
        shapes = [self.input_shape]
        for number, stage in enumerate(self.stages):
            rows, cols = shapes[-1]
            if stage.down > 1 and (rows % stage.down or cols % stage.down):
                raise GeometryError(
                    f"op {number + 1} shrinks by {stage.down}, but the image there is "
                    f"{rows} x {cols}, not divisible by {stage.down}; crop or pad it first"
                )
            shapes.append((rows * stage.up // stage.down, cols * stage.up // stage.down))
        return shapes

    @property
    def output_shape(self) -> tuple[int, int]:
        """Shape of the pipeline's output."""
        return self.shapes[-1]

    def windows(self, core: Window) -> list[Window]:
        """The window of every stage's input that determines ``core``, then ``core`` itself.

        ``windows(core)[0]`` is the read window in the input.
        """
        shapes = self.shapes
        if core.stop_row > shapes[-1][0] or core.stop_col > shapes[-1][1]:
            raise GeometryError(f"{core} is outside the output of shape {shapes[-1]}")
        out = [core]
        window = core
        for index in range(len(self.stages) - 1, -1, -1):
            stage = self.stages[index]
            if stage.up > 1:
                row, col = window.row // stage.up, window.col // stage.up
                stop_row = _ceil_div(window.stop_row, stage.up)
                stop_col = _ceil_div(window.stop_col, stage.up)
                window = Window(row, col, stop_row - row, stop_col - col)
            elif stage.down > 1:
                window = window.scaled(stage.down)
            window = window.grow(stage.halo, bounds=shapes[index])
            if stage.down > 1:
                row = window.row // stage.down * stage.down
                col = window.col // stage.down * stage.down
                stop_row = _ceil_div(window.stop_row, stage.down) * stage.down
                stop_col = _ceil_div(window.stop_col, stage.down) * stage.down
                window = Window(row, col, stop_row - row, stop_col - col)
            out.append(window)
        out.reverse()
        return out

    def forward(self, index: int, window: Window) -> Window:
        """Where stage ``index``'s result lies, in its output, for an input ``window``."""
        stage = self.stages[index]
        if stage.up > 1:
            return window.scaled(stage.up)
        if stage.down > 1:
            return window.scaled(stage.down, divide=True)
        return window
