"""Detectors parsed from text, with one-line errors for bad names and parameters."""

from __future__ import annotations

import pytest

from tilewise.errors import UsageError
from tilewise.measurements import Peaks, Regions, parse_detector


def test_parse_both_detectors():
    assert parse_detector("peaks:threshold=0.5,min_distance=3,exclude_border=false") == Peaks(
        0.5, 3, False
    )
    assert parse_detector(" regions: threshold=7 , connectivity=2 ") == Regions(7, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blobs:threshold=1", "unknown detector 'blobs'"),
        ("peaks:threshold=1,radius=3", r"bad parameter 'radius=3'.*min_distance="),
        ("peaks:min_distance=3", "needs threshold="),
        ("regions:threshold=1,connectivity=4", "connectivity must be 1 or 2"),
        ("peaks:threshold", "bad parameter 'threshold'"),
    ],
)
def test_bad_specs_say_what_to_write(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_detector(spec)
