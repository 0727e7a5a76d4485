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


def test_a_torn_last_line_is_ignored_but_a_damaged_middle_line_is_refused(tmp_path):
    import pytest

    from tilewise.errors import ResumeError

    path = tmp_path / ".out.zarr.journal"
    journal = Journal.start(path, {"input": "x"})
    for tile in range(3):
        journal.record(tile, {"r": tile})
    journal.close()
    lines = _lines(path)
    path.write_text("\n".join([*lines, '{"tile": 3, "r"']) + "\n")  # killed mid-write
    assert sorted(Journal.resume(path, {"input": "x"}).done) == [0, 1, 2]

    lines[2] = lines[2][:-5] + "\x00\x00"  # tile 1's line damaged in place
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResumeError, match=r"\.out\.zarr\.journal: line 3 of the journal"):
        Journal.resume(path, {"input": "x"})


def test_a_run_resumed_after_a_torn_last_line_can_be_resumed_again(tmp_path):
    path = tmp_path / ".out.zarr.journal"
    journal = Journal.start(path, {"input": "x"})
    journal.record(0, {"r": 0})
    journal.close()
    with open(path, "a") as fh:
        fh.write('{"tile":1,"r"')  # killed mid-write: no newline
    resumed = Journal.resume(path, {"input": "x"})
    resumed.record(2, {"r": 2})
    resumed.close()
    again = Journal.resume(path, {"input": "x"})
    assert sorted(again.done) == [0, 2]
    assert again.done[2] == {"tile": 2, "r": 2}


def test_the_latest_line_of_a_tile_is_its_entry(tmp_path):
    path = tmp_path / ".out.zarr.journal"
    journal = Journal.start(path, {"input": "x"})
    for tile, receipt in ((0, "old"), (1, "one"), (0, "new")):
        journal.record(tile, {"r": receipt})
    journal.forget(1)
    assert dict(journal.done.items()) == {0: {"tile": 0, "r": "new"}}
    assert len(journal.done) == 1 and 1 not in journal.done and journal.done[0]["r"] == "new"
    journal.close()
    resumed = Journal.resume(path, {"input": "x"})
    assert dict(resumed.done.items()) == {0: {"tile": 0, "r": "new"}, 1: {"tile": 1, "r": "one"}}
