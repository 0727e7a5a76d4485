"""Percentiles from counts: NumPy's default ('linear') rule, applied to order statistics.

``np.percentile(x, q)`` takes the sorted values at ``floor((n-1)·q/100)`` and
the next one and interpolates between them. Given a way to find the k-th
smallest value (exactly from a full histogram, or bounded within one bin), the
same arithmetic — in the same dtype, with NumPy's own two-sided interpolation
formula — gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["linear_percentile", "order_statistic"]


def order_statistic(values: npt.NDArray[Any], counts: npt.NDArray[Any], k: int) -> Any:
    """The ``k``-th smallest (0-based) of a multiset given as sorted ``values`` with ``counts``.

    >>> order_statistic(np.array([2, 5, 9]), np.array([1, 3, 1]), 3)
    np.int64(5)
    """
    return values[int(np.searchsorted(np.cumsum(counts), k, side="right"))]


def linear_percentile(n: int, q: float, kth: Callable[[int], Any], dtype: npt.DTypeLike) -> float:
    """``np.percentile`` (method 'linear') of ``n`` values whose k-th smallest is ``kth(k)``.

    >>> data = np.array([7, 1, 3, 3, 10], dtype=np.uint8)
    >>> ordered = np.sort(data)
    >>> bool(linear_percentile(5, 40.0, lambda k: ordered[k], np.uint8) == np.percentile(data, 40))
    True
    """
    index = (n - 1) * np.true_divide(q, 100)
    if index >= n - 1:
        below = above = n - 1
    else:
        below = max(0, math.floor(index))
        above = below + 1
    gamma = np.float64(index - below)
    a = np.asarray([kth(below)], dtype=dtype)
    b = np.asarray([kth(above)], dtype=dtype)
    diff = b - a  # in the data's dtype, as NumPy computes it
    result = np.add(a, diff * gamma)
    if gamma >= 0.5:
        result = np.subtract(b, diff * (1 - gamma), dtype=result.dtype, casting="unsafe")
    return float(result[0])
