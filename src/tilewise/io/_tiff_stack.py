"""How a TIFF output names a stack's axes: ImageJ hyperstack, OME-TIFF, or tifffile's own.

An output keeps the kind of metadata its input named the axes with, when that
kind can hold the output (an array's axes named ``T``, ``Z``, ``C`` become
OME-TIFF, the format microscopy readers share); otherwise it falls back to
tifffile's own (``{"shape": ..., "axes": ...}`` in the ImageDescription), which
tifffile reads back as the same series, and which holds any axes, dtype and size:

- **ImageJ** (``imagej=True``): leading axes in ImageJ's order (a subsequence of
  ``TZC``), uint8, uint16, int16 or float32 samples (RGB only as uint8), one,
  three or four samples, and a classic TIFF (ImageJ reads no BigTIFF: an
  output past 4 GiB is written as OME-TIFF instead).
- **OME-TIFF** (``ome=True``), for OME inputs, ImageJ inputs ImageJ cannot hold, and
  arrays: leading axes among ``T``, ``Z``, ``C`` in any order.
- **tifffile's own**, for everything else (``I``/``Q`` axes of plain multi-page
  files and arrays, other letters, other sample types).

A 2-D output has no such metadata (as before stacks were read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilewise.io.base import SinkSpec

__all__ = ["StackWriting", "stack_writing"]

_IMAGEJ_DTYPES = ("uint8", "uint16", "int16", "float32")


@dataclass(frozen=True, slots=True)
class StackWriting:
    """Arguments for ``TiffWriter(...)`` (``file``) and its ``write(...)``."""

    file: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    planarconfig: str | None = "contig"
    #: ``"imagej"``, ``"ome"``, ``"tiff"`` (tifffile's own) or ``""`` (a 2-D output).
    kind: str = ""


def _in_order(axes: str, order: str) -> bool:
    """Whether ``axes`` are distinct letters of ``order``, in its order.

    >>> _in_order("ZC", "TZC"), _in_order("CZ", "TZC"), _in_order("I", "TZC")
    (True, False, False)
    """
    positions = [order.find(a) for a in axes]
    return -1 not in positions and positions == sorted(set(positions))


def _imagej_holds(spec: SinkSpec, needs_bigtiff: bool) -> bool:
    dtype = np.dtype(spec.dtype).name
    return (
        _in_order(spec.axes, "TZC")
        and dtype in _IMAGEJ_DTYPES
        and (spec.bands == 1 or (spec.bands in (3, 4) and dtype == "uint8"))
        and not needs_bigtiff
    )


def _ome_holds(spec: SinkSpec) -> bool:
    return len(set(spec.axes)) == len(spec.axes) and all(a in "TZC" for a in spec.axes)


def stack_writing(spec: SinkSpec, bigtiff: bool, needs_bigtiff: bool) -> StackWriting:
    """How to write the output of ``spec`` (module docstring).

    ``bigtiff`` is what ``--co BIGTIFF`` chose; ``needs_bigtiff`` whether the output
    passes what a classic TIFF addresses.
    """
    if not spec.planes:
        return StackWriting({"bigtiff": bigtiff})
    axes = spec.axes + "YX" + ("S" if spec.bands > 1 else "")
    planar = "contig" if spec.bands > 1 else None
    if spec.stack_kind == "imagej" and _imagej_holds(spec, needs_bigtiff):
        return StackWriting({"bigtiff": False, "imagej": True}, {"axes": axes}, planar, "imagej")
    if spec.stack_kind in ("imagej", "ome", "array") and _ome_holds(spec):
        return StackWriting({"bigtiff": bigtiff, "ome": True}, {"axes": axes}, planar, "ome")
    return StackWriting({"bigtiff": bigtiff}, {"axes": axes}, planar, "tiff")
