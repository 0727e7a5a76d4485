"""The tile map is drawn without touching matplotlib's global state."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

_DRAW = """
import json, sys, matplotlib
matplotlib.use("svg")
from tilewise.runner.tilemap import draw_tile_map
draw_tile_map(json.loads(sys.argv[1]), sys.argv[2])
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_drawing_a_tile_map_leaves_the_backend_and_pyplot_alone(tmp_path):
    window = {"row": 0, "col": 0, "height": 8, "width": 8}
    report = {
        "input": "in.tif",
        "grid": {"image_shape": [8, 16]},
        "tiles": {"total": 2, "done": 1, "failed": 1, "skipped": 0},
        "per_tile": [
            {"outcome": "done", "worker": "host:1", "seconds": 0.1, "window": window},
            {"outcome": "failed", "window": {**window, "col": 8}},
        ],
    }
    png = tmp_path / "map.png"
    out = subprocess.run(
        [sys.executable, "-c", _DRAW, json.dumps(report), str(png)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["svg", "False"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
