"""A large run keeps its per-tile records on disk; its report is the same as from memory."""

from __future__ import annotations

import json

import numpy as np

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tilewise.runner import run as run_module
from tilewise.runner.records import TileRecord, TileRecords


def test_spooled_records_read_back_as_written_with_the_same_totals(tmp_path):
    kept, spooled = TileRecords(), TileRecords(spool=tmp_path)
    window = {"row": 0, "col": 0, "height": 4, "width": 8}
    records = [
        TileRecord(0, window, "done", "w:1", 0.5, 1, stages=(0.1, 0.2, 0.05)),
        TileRecord(1, window, "failed", "w:2", 0.1, 3, "boom", "exception", "tb", ["a", "b"]),
        TileRecord(2, window, "done", "w:1", 0.25, 2, history=["x"], stages=(0.1, 0.1, 0.0)),
    ]
    for record in records:
        kept.append(record)
        spooled.append(record)
    assert spooled.spooled and list(tmp_path.iterdir()) == []  # the file has no name
    assert list(spooled) == list(kept) == records
    assert list(spooled) == records  # read again, and appending goes on after it
    spooled.append(records[0])
    assert len(spooled) == 4 and list(spooled)[-1] == records[0]
    assert spooled.pixels_done == 3 * 32 and kept.pixels_done == 2 * 32
    assert spooled.failures == kept.failures == [records[1]]
    assert kept.stage_sums == [0.2, 0.30000000000000004, 0.05]


def test_a_run_with_spooled_records_writes_the_full_report(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "_SPOOL_ABOVE", 0)
    image = make_image((96, 80), "uint8")
    src = write_image(tmp_path / "in.npy", image)
    out, path = tmp_path / "out.npy", tmp_path / "report.json"
    report = tilewise.run(src, out, ["invert"], tile=16, workers=2, report=path, progress=False)
    assert report.ok and report.tiles.spooled
    np.testing.assert_array_equal(read_image(out), 255 - image)
    written = json.loads(path.read_text())
    assert written == json.loads(json.dumps(report.to_dict()))
    assert sorted(t["tile"] for t in written["per_tile"]) == list(range(30))
    assert leftovers(tmp_path) == []
