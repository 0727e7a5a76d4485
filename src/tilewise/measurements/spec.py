"""Detectors written as text, as a command line takes them: ``peaks:min_distance=5,threshold=3``."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from tilewise.errors import UsageError
from tilewise.ops.base import parse_value

if TYPE_CHECKING:
    from tilewise.measurements.peaks import Peaks
    from tilewise.measurements.regions import Regions

__all__ = ["DETECTORS", "parse_detector"]

#: Detector name -> (module, class); each class takes its parameters as keywords. Only the
#: one named is imported (peaks import SciPy, which merging regions does not need).
DETECTORS: dict[str, tuple[str, str]] = {
    "peaks": ("tilewise.measurements.peaks", "Peaks"),
    "regions": ("tilewise.measurements.regions", "Regions"),
}


def parse_detector(spec: str) -> Peaks | Regions:
    """Parse ``"NAME:key=value,..."`` into a detector.

    >>> parse_detector("peaks:min_distance=5,threshold=0.03")
    Peaks(threshold=0.03, min_distance=5, exclude_border=True)
    >>> parse_detector("regions:threshold=10,connectivity=2,min_area=20").min_area
    20
    """
    name, _, arg_text = spec.strip().partition(":")
    where = DETECTORS.get(name.strip())
    if where is None:
        raise UsageError(f"unknown detector {name!r} in {spec!r}; choose from {sorted(DETECTORS)}")
    cls: type[Peaks] | type[Regions] = getattr(importlib.import_module(where[0]), where[1])
    fields = {f.name: f for f in dataclasses.fields(cls)}
    params: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in arg_text.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise UsageError(
                f"bad parameter {item!r} in detector {spec!r}; {name} takes "
                f"{', '.join(f'{k}=' for k in fields)}"
            )
        params[key] = parse_value(value)
    missing = [
        k
        for k, f in fields.items()
        if k not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UsageError(f"detector {spec!r} needs {', '.join(f'{k}=' for k in missing)}")
    return cls(**params)
