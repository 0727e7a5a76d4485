"""tilewise: exact, out-of-core, parallel tiled processing of enormous images.

The result of every tiled run is bit-identical to running the same ops on the
whole image at once.

>>> import numpy as np, tilewise
>>> image = np.random.default_rng(0).integers(0, 255, (300, 200), dtype=np.uint8)
>>> tiled = tilewise.process(image, ["gaussian:sigma=2", "threshold:value=127"], tile=64)
>>> whole = tilewise.process(image, ["gaussian:sigma=2", "threshold:value=127"], tile=300)
>>> bool((tiled == whole).all())
True
"""

from tilewise.api import info, plan, run
from tilewise.batch import BatchReport, batch
from tilewise.errors import TilewiseError
from tilewise.geometry import Grid, Layout, Tile, Window
from tilewise.inmemory import Piece, merge, process, split
from tilewise.ops import op
from tilewise.pipeline import Pipeline
from tilewise.runner import RunReport

__version__ = "0.1.0"

__all__ = [
    "BatchReport",
    "Grid",
    "Layout",
    "Piece",
    "Pipeline",
    "RunReport",
    "Tile",
    "TilewiseError",
    "Window",
    "__version__",
    "batch",
    "info",
    "merge",
    "op",
    "plan",
    "process",
    "run",
    "split",
]
