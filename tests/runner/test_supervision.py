"""RELIABILITY.md rows 1-9 and 26: faults inside ops, with real worker processes.

Each test checks: the other tiles are bit-identical to a clean run, the failed
tile is named with its cause, no temp files are left behind, no worker
processes outlive the run, and the documented outcome (report / exit code).
"""

from __future__ import annotations

import numpy as np
import pytest

import tilewise
from tests.conftest import leftovers, read_image
from tests.runner.helpers import TARGET, TILE, marked_file, wait_no_workers
from tilewise.errors import PipelineError


def partial_output(path):
    """Read what the partial .npy output holds (the run did not finalize it)."""
    return np.load(path.with_name(f".{path.name}.partial"))


def check_others_intact(out, image, failed=(TARGET,)):
    got = partial_output(out)
    grid = tilewise.Grid(image.shape, (TILE, TILE))
    for tile in grid:
        if tile.index in failed:
            continue
        np.testing.assert_array_equal(got[tile.core.slices], image[tile.core.slices])


def run(src, out, op, **kwargs):
    kwargs.setdefault("workers", 2)
    return tilewise.run(src, out, [op], tile=TILE, **kwargs)


def test_row1_exception_is_reported_and_resume_redoes_only_that_tile(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    fixed = tmp_path / "fixed"
    op = f"tests.faults.raise_on_marker:fixed={fixed}"
    report = run(src, out, op, retries=1)
    assert not report.ok and report.failed == 1 and report.done == 15
    failure = report.failures[0]
    assert failure.tile == TARGET
    assert failure.cause == "ValueError: bad pixel found"
    assert "Traceback" in failure.detail and "raise_on_marker" in failure.detail
    assert failure.attempts == 2
    assert not out.exists()  # never finalized with a hole
    check_others_intact(out, image)
    assert wait_no_workers() == []

    fixed.write_text("fixed")
    again = run(src, out, op, resume=True)
    assert again.ok and again.done == 1 and again.skipped == 15
    assert [t.tile for t in again.tiles] == [TARGET]
    np.testing.assert_array_equal(read_image(out), image)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("abort", "SIGABRT"),
        ("segv", "SIGSEGV"),
        ("kill", "SIGKILL"),
        ("exit", "exited with code 17"),
    ],
)
def test_rows2_to_4_a_dying_worker_costs_one_tile(tmp_path, how, words):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    report = run(src, out, f"tests.faults.crash_on_marker:how={how}", retries=1)
    assert report.failed == 1 and report.done == 15
    failure = report.failures[0]
    assert failure.tile == TARGET and words in failure.cause
    if how == "kill":
        assert "memory" in failure.cause
    assert failure.attempts == 2
    check_others_intact(out, image)
    assert wait_no_workers() == []


def test_row5_transient_crash_is_retried_and_output_identical(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    once = tmp_path / "crashed-once"
    report = run(src, out, f"tests.faults.crash_on_marker:how=segv,once={once}", retries=2)
    assert report.ok
    np.testing.assert_array_equal(read_image(out), image)
    record = next(t for t in report.tiles if t.tile == TARGET)
    assert record.attempts == 2
    assert "SIGSEGV" in record.history[0]
    assert (
        report.to_dict()["per_tile"][
            next(i for i, t in enumerate(report.tiles) if t.tile == TARGET)
        ]["attempts"]
        == 2
    )


def test_row6_poison_tile_is_given_up_after_its_attempts(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    report = run(src, out, "tests.faults.crash_on_marker:how=abort", retries=3)
    assert report.failed == 1 and report.done == 15
    failure = report.failures[0]
    assert failure.attempts == 4
    assert len(failure.history) == 4 and all("SIGABRT" in h for h in failure.history)
    check_others_intact(out, image)


def test_row7_a_hanging_tile_times_out_and_its_worker_is_replaced(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    report = run(src, out, "tests.faults.hang_on_marker", retries=0, timeout=3)
    assert report.failed == 1 and report.done == 15
    failure = report.failures[0]
    assert failure.tile == TARGET and failure.cause.startswith("timed out after 3 s")
    assert failure.kind == "timeout"
    check_others_intact(out, image)
    assert wait_no_workers() == []


def test_row8_memory_limit_fails_only_the_greedy_tile(tmp_path):
    src, image = marked_file(tmp_path)
    out = tmp_path / "out.npy"
    report = run(src, out, "tests.faults.hog_on_marker:gib=3", retries=0, memory_limit=2**30)
    assert report.failed == 1 and report.done == 15
    failure = report.failures[0]
    assert failure.tile == TARGET and "exceeded the memory limit" in failure.cause
    assert failure.kind == "memory"
    check_others_intact(out, image)


def test_row9_leaking_op_completes_when_workers_are_recycled(tmp_path):
    src, image = marked_file(tmp_path, target_pixel=None)
    leak = "tests.faults.leak:mib=60"
    limit = 300 * 2**20
    # without recycling, each worker leaks 8 x 60 MiB > 300 MiB: the limit catches it ...
    leaking = run(src, tmp_path / "a.npy", leak, retries=0, memory_limit=limit)
    assert leaking.failed > 0
    assert all("memory" in f.cause for f in leaking.failures)
    # ... and with a worker replaced every 3 tiles the run completes
    recycled = run(
        src, tmp_path / "b.npy", leak, retries=0, memory_limit=limit, max_tasks_per_worker=3
    )
    assert recycled.ok
    np.testing.assert_array_equal(read_image(tmp_path / "b.npy"), image)
    assert len({t.worker for t in recycled.tiles}) >= 16 // 3


def test_row26_an_op_returning_a_non_array_fails_its_tiles_without_hanging(tmp_path):
    src, _ = marked_file(tmp_path)
    report = run(src, tmp_path / "out.npy", "tests.faults.return_lock", retries=0)
    assert report.failed == 16
    assert all("returned lock, not a numpy array" in f.cause.lower() for f in report.failures)


def test_row26_a_lambda_op_is_refused_before_any_tile(tmp_path):
    src, _ = marked_file(tmp_path)
    with pytest.raises(PipelineError, match="lambda"):
        tilewise.run(src, tmp_path / "out.npy", [lambda image: image], tile=TILE)
    assert leftovers(tmp_path) == []
