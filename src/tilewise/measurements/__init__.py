"""Measurements across tiles: peaks, regions and statistics equal to the whole-image answer.

Each detector runs per tile (after the ops) and returns a small part; one
merger in the main process turns the parts into the result. :func:`tiled`
drives both over an in-memory array. See ``docs/measure.md``.
"""

from tilewise.measurements._driver import tiled
from tilewise.measurements._geo import with_xy
from tilewise.measurements._regions_merge import RegionsMerge, relabel
from tilewise.measurements._table import (
    GEO_SUFFIXES,
    TABLE_SUFFIXES,
    Table,
    check_table_path,
    concat,
    to_frame,
    write_table,
)
from tilewise.measurements.base import Detector, Merger
from tilewise.measurements.peaks import Peaks, PeaksMerge, skimage_order
from tilewise.measurements.regions import Regions
from tilewise.measurements.spec import parse_detector
from tilewise.measurements.stats import BandStats, Stats, StatsMerge, stats_table

__all__ = [
    "GEO_SUFFIXES",
    "TABLE_SUFFIXES",
    "BandStats",
    "Detector",
    "Merger",
    "Peaks",
    "PeaksMerge",
    "Regions",
    "RegionsMerge",
    "Stats",
    "StatsMerge",
    "Table",
    "check_table_path",
    "concat",
    "parse_detector",
    "relabel",
    "skimage_order",
    "stats_table",
    "tiled",
    "to_frame",
    "with_xy",
    "write_table",
]
