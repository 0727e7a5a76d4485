"""Greedy minimum spacing: the rule ``skimage.feature.peak_local_max`` applies to its candidates."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

__all__ = ["conflict_groups", "greedy_spacing"]


def greedy_spacing(
    rows: npt.NDArray[Any], cols: npt.NDArray[Any], spacing: int
) -> npt.NDArray[np.bool_]:
    """Which points to keep: each, in the given order, unless a kept one is nearer than ``spacing``.

    Distance is Chebyshev (``max(|dr|, |dc|)``), as in skimage's default
    ``p_norm=inf``; a point at exactly ``spacing`` from a kept one is kept too.
    This is skimage's ``ensure_spacing`` (its batches do not change the result:
    points kept in earlier batches come first in every later one).

    >>> greedy_spacing(np.array([0, 0, 0, 0]), np.array([0, 1, 2, 3]), 2).tolist()
    [True, False, True, False]
    """
    keep = np.zeros(len(rows), dtype=bool)
    kept: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        kr, kc = r // spacing, c // spacing
        near = any(
            abs(qr - r) < spacing and abs(qc - c) < spacing
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            for qr, qc in kept.get((kr + dr, kc + dc), ())
        )
        if not near:
            keep[i] = True
            kept.setdefault((kr, kc), []).append((r, c))
    return keep


def conflict_groups(mask: npt.NDArray[np.bool_], reach: int) -> tuple[npt.NDArray[Any], int]:
    """Label the groups of ``True`` pixels linked by chains of steps of at most ``reach``.

    Two pixels are linked when ``max(|dr|, |dc|) <= reach``. Returns a label
    image one pixel per set pixel larger than ``mask`` by ``reach - 1`` at the
    bottom and right (read a pixel's group at its own position) and the number
    of groups. Each pixel is widened to a ``reach`` x ``reach`` box starting at
    it; two such boxes overlap or touch (8-connected) exactly when their corners
    are at most ``reach`` apart on both axes.

    >>> labels, n = conflict_groups(np.array([[1, 0, 0, 1, 0, 0, 0, 1]], bool), 3)
    >>> n, labels[0, [0, 3, 7]].tolist()
    (2, [1, 1, 2])
    """
    h, w = mask.shape
    padded = np.pad(mask.astype(np.uint8), reach - 1)
    widened = ndi.maximum_filter(padded, size=reach, mode="constant", cval=0)
    start = reach // 2
    boxes = widened[start : start + h + reach - 1, start : start + w + reach - 1]
    labels, count = ndi.label(boxes, structure=np.ones((3, 3), dtype=bool))
    return labels, int(count)
