"""The journal: what is recorded reaches the file when it says so."""

from __future__ import annotations

from tilewise.runner.journal import Journal


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_a_record_is_on_disk_at_once_unless_the_caller_batches_it(tmp_path):
    path = tmp_path / "run.journal"
    journal = Journal.start(path, {"input": "x"})
    before = len(_lines(path))
    journal.record(0, {"r": 1})
    assert len(_lines(path)) == before + 1
    journal.record(1, {"r": 2}, flush=False)
    journal.record(2, {"r": 3}, flush=False)
    assert len(_lines(path)) == before + 1  # held until flush
    journal.flush()
    assert len(_lines(path)) == before + 3
    resumed = Journal.resume(path, {"input": "x"})
    assert sorted(resumed.done) == [0, 1, 2]
    journal.close()
    resumed.close()
