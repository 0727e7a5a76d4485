"""``stamp``: write the worker's name on each tile, a visual check of who did what."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise._host import worker_name
from tilewise.ops.base import OpDefinition, Param, register

Array = npt.NDArray[Any]


def stamp(image: Array, scale: float = 1.0) -> Array:
    """Draw the worker's ``host:pid`` in the middle of the tile, and a 1-px frame.

    Uses ``cv2.putText`` and ``cv2.rectangle`` in the brightest value of the
    dtype. Not exact by design: the pixels depend on which worker ran the tile.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    bright = np.iinfo(out.dtype).max if out.dtype.kind in "ui" else 1.0
    color: Any = (bright,) * (1 if out.ndim == 2 else out.shape[2])
    text = worker_name()
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), _ = cv2.getTextSize(text, font, scale, 2)
    origin = (max(0, (out.shape[1] - width) // 2), max(height, (out.shape[0] + height) // 2))
    cv2.putText(out, text, origin, font, scale, color, 2, cv2.LINE_AA)
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), color, 1)
    return out


register(
    OpDefinition(
        name="stamp",
        func=stamp,
        dtypes=("uint8",),  # cv2.putText draws on 8-bit images only
        in_bands=(1, 3, 4),
        params=(Param("scale", float, 1.0, help="font scale"),),
        equals="cv2.putText of host:pid (not exact: depends on the worker)",
        summary="draw the worker's name on each tile",
        exact=False,
    )
)
