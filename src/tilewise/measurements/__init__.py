"""Measurements across tiles: peaks, regions and statistics equal to the whole-image answer.

Each detector runs per tile (after the ops) and returns a small part; one
merger in the main process turns the parts into the result. :func:`tiled`
drives both over an in-memory array. See ``docs/measure.md``.

The names below load on first use, so statistics (NumPy only) never import
SciPy, which peaks and regions need — in the main process or in a worker.
"""

from __future__ import annotations

from tilewise._lazy import attach

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing

_EXPORTS = {
    "BandStats": "tilewise.measurements.stats",
    "Detector": "tilewise.measurements.base",
    "GEO_SUFFIXES": "tilewise.measurements._table",
    "Merger": "tilewise.measurements.base",
    "Peaks": "tilewise.measurements.peaks",
    "PeaksMerge": "tilewise.measurements.peaks",
    "Regions": "tilewise.measurements.regions",
    "RegionsMerge": "tilewise.measurements._regions_merge",
    "Stats": "tilewise.measurements.stats",
    "StatsMerge": "tilewise.measurements.stats",
    "TABLE_SUFFIXES": "tilewise.measurements._table",
    "Table": "tilewise.measurements._table",
    "check_table_path": "tilewise.measurements._table",
    "concat": "tilewise.measurements._table",
    "parse_detector": "tilewise.measurements.spec",
    "relabel": "tilewise.measurements._regions_merge",
    "skimage_order": "tilewise.measurements.peaks",
    "stats_table": "tilewise.measurements.stats",
    "tiled": "tilewise.measurements._driver",
    "to_frame": "tilewise.measurements._table",
    "with_xy": "tilewise.measurements._geo",
    "write_table": "tilewise.measurements._table",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = attach(__name__, _EXPORTS)


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from tilewise.measurements._driver import tiled as tiled
    from tilewise.measurements._geo import with_xy as with_xy
    from tilewise.measurements._regions_merge import RegionsMerge as RegionsMerge
    from tilewise.measurements._regions_merge import relabel as relabel
    from tilewise.measurements._table import GEO_SUFFIXES as GEO_SUFFIXES
    from tilewise.measurements._table import TABLE_SUFFIXES as TABLE_SUFFIXES
    from tilewise.measurements._table import Table as Table
    from tilewise.measurements._table import check_table_path as check_table_path
    from tilewise.measurements._table import concat as concat
    from tilewise.measurements._table import to_frame as to_frame
    from tilewise.measurements._table import write_table as write_table
    from tilewise.measurements.base import Detector as Detector
    from tilewise.measurements.base import Merger as Merger
    from tilewise.measurements.peaks import Peaks as Peaks
    from tilewise.measurements.peaks import PeaksMerge as PeaksMerge
    from tilewise.measurements.peaks import skimage_order as skimage_order
    from tilewise.measurements.regions import Regions as Regions
    from tilewise.measurements.spec import parse_detector as parse_detector
    from tilewise.measurements.stats import BandStats as BandStats
    from tilewise.measurements.stats import Stats as Stats
    from tilewise.measurements.stats import StatsMerge as StatsMerge
    from tilewise.measurements.stats import stats_table as stats_table
