"""tilewise: exact, out-of-core, parallel tiled processing of enormous images.

The result of every tiled run is bit-identical to running the same ops on the
whole image at once.

>>> import numpy as np, tilewise
>>> image = np.random.default_rng(0).integers(0, 255, (300, 200), dtype=np.uint8)
>>> tiled = tilewise.process(image, ["gaussian:sigma=2", "threshold:value=127"], tile=64)
>>> whole = tilewise.process(image, ["gaussian:sigma=2", "threshold:value=127"], tile=300)
>>> bool((tiled == whole).all())
True

The public names are imported on first use (as in SPEC 1, scientific Python's
lazy loading), so ``import tilewise`` and the ``tilewise`` command start in a
fraction of the time NumPy, OpenCV and tifffile take to import; the command
starts its worker processes while the rest loads.
"""

from __future__ import annotations

from tilewise._lazy import attach

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~15 ms)

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "BatchReport": "tilewise.collection",
    "Grid": "tilewise.geometry",
    "Layout": "tilewise.geometry",
    "Piece": "tilewise.inmemory",
    "Pipeline": "tilewise.pipeline",
    "RunReport": "tilewise.runner.report",
    "Tile": "tilewise.geometry",
    "TilewiseError": "tilewise.errors",
    "Window": "tilewise.geometry",
    "batch": "tilewise.collection",
    "info": "tilewise.api",
    "measure": "tilewise.api_measure",
    "merge": "tilewise.inmemory",
    "op": "tilewise.ops",
    "plan": "tilewise.api",
    "process": "tilewise.inmemory",
    "run": "tilewise.api",
    "split": "tilewise.inmemory",
    "stats": "tilewise.api_measure",
}

__all__ = sorted([*_EXPORTS, "__version__"])

__getattr__, __dir__ = attach(__name__, _EXPORTS)


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from tilewise.api import info as info
    from tilewise.api import plan as plan
    from tilewise.api import run as run
    from tilewise.api_measure import measure as measure
    from tilewise.api_measure import stats as stats
    from tilewise.collection import BatchReport as BatchReport
    from tilewise.collection import batch as batch
    from tilewise.errors import TilewiseError as TilewiseError
    from tilewise.geometry import Grid as Grid
    from tilewise.geometry import Layout as Layout
    from tilewise.geometry import Tile as Tile
    from tilewise.geometry import Window as Window
    from tilewise.inmemory import Piece as Piece
    from tilewise.inmemory import merge as merge
    from tilewise.inmemory import process as process
    from tilewise.inmemory import split as split
    from tilewise.ops import op as op
    from tilewise.pipeline import Pipeline as Pipeline
    from tilewise.runner.report import RunReport as RunReport
