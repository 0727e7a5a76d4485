"""An op for the cluster simulation: it sleeps, so 2 cores can host a hundred workers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import tilewise


@tilewise.op(halo=0)
def nap(image: np.ndarray[Any, Any], ms: float = 20.0) -> np.ndarray[Any, Any]:
    """Sleep ``ms`` milliseconds, then return the tile unchanged (a stand-in for real work)."""
    time.sleep(ms / 1000)
    return image.copy()
