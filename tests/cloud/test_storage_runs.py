"""Runs against object storage that go wrong part-way, and the commands beyond ``run``.

A server that stops mid-run, a resume of an output already uploaded, ``batch`` and
``measure`` on URLs, and the Dask executor with a bucket on both ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import tilewise
from tests.cloud.conftest import FaultProxy, S3Server, run_here, tilewise_cmd
from tests.conftest import read_image
from tests.runner.helpers import journal_lines, start_cli, wait_for_journal
from tilewise.errors import UsageError
from tilewise.io import local_state
from tilewise.runner.journal import Journal, journal_path


def test_a_server_that_stops_mid_run_stops_the_run_at_once_resumably(
    s3_server: S3Server, scene: Path, tmp_path: Path
) -> None:
    bucket = s3_server.bucket("stopped")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    dst = f"{bucket}/out.tif"
    proxy = FaultProxy(s3_server.proxy.upstream).start()  # this run's own way to the server
    env = {
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "TILEWISE_STORAGE_RETRIES": "1",  # a stopped server fails fast, not after a minute
        "TILEWISE_STORAGE_RETRY_SECONDS": "2",
    }
    slow = ("--op", "tests.faults.slow:seconds=0.3", "--op", "invert")
    args = ("run", src, dst, *slow, "--tile", "128", "--workers", "2", "--retries", "0", "-q")
    state = local_state(dst)
    first = tmp_path / "first.json"
    proc = start_cli(*args, "--report", str(first), env={**os.environ, **env})
    try:
        wait_for_journal(state, 6, proc)
        proxy.stop()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 3, stderr  # stopped; the finished tiles are kept
    stopped = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(stopped) == 1, stderr  # one line, not one per remaining tile
    assert "stopped the run" in stopped[0] and "StorageUnavailableError" in stopped[0]
    assert f"{bucket}/" in stopped[0] and "--resume" in stopped[0]  # the URL named
    assert "--allow-failed" not in stderr  # refused for buckets
    assert s3_server.keys(dst) == []  # nothing under the final key
    done_before = journal_lines(state)
    assert 6 <= done_before < 25
    report = json.loads(first.read_text())
    # the first failure of storage stopped the run: one tile failed, once, and the rest
    # of the 25 were never started (before, each was tried and failed in turn)
    assert report["tiles"]["failed"] == 1 and report["tiles"]["done"] == done_before
    assert [f["kind"] for f in report["failures"]] == ["environment"]
    assert report["failures"][0]["attempts"] == 1
    assert report["stopped_by"].startswith(f"tile {report['failures'][0]['tile']}: ")
    assert len(report["per_tile"]) == done_before + 1 <= 25 - 4

    back = FaultProxy(s3_server.proxy.upstream, proxy.server_address[1]).start()  # same port
    try:
        resumed = tilewise_cmd(*args, "--resume", "--report", str(tmp_path / "r.json"), env=env)
    finally:
        back.stop()
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["tiles"]["skipped"] == done_before and report["redone_damaged"] == []
    got = tifffile.imread(s3_server.download(dst, tmp_path / "out.tif"))
    np.testing.assert_array_equal(got, 255 - tifffile.imread(scene))


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_a_resume_after_the_output_is_final_finds_it_complete(
    s3_server: S3Server,
    scene: Path,
    reference: np.ndarray[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    bucket = s3_server.bucket("final")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    dst = f"{bucket}/{name}"
    with monkeypatch.context() as patched:  # stopped right after the upload or publication
        patched.setattr(Journal, "remove", lambda journal: None)
        run_here(src, dst)
    journal = journal_path(local_state(dst))
    assert journal.exists()
    report = run_here(src, dst, resume=True)
    assert report.extra["already_final"] and report.finalized
    assert report.skipped == report.total and report.done == 0
    assert not journal.exists()
    got = read_image(s3_server.download(dst, tmp_path / name))
    np.testing.assert_array_equal(got, reference)


def test_measure_and_stats_read_a_url_as_they_read_the_file(
    s3_server: S3Server, scene: Path, tmp_path: Path
) -> None:
    src = s3_server.upload(scene, f"{s3_server.bucket('measured')}/scene.tif")
    options: dict[str, Any] = {"tile": 128, "executor": "serial", "frame": False}
    detect = "regions:threshold=127,min_area=4"
    table = tmp_path / "remote.csv"
    got = tilewise.measure(src, "gaussian:sigma=1", detect=detect, output=table, **options)
    want = tilewise.measure(scene, "gaussian:sigma=1", detect=detect, **options)
    assert got.keys() == want.keys() and len(want["label"]) > 10
    for column in want:
        np.testing.assert_array_equal(got[column], want[column], err_msg=column)
    assert table.read_text().count("\n") == len(want["label"]) + 1  # the header and a row each
    del options["frame"]
    (remote,), (local,) = tilewise.stats(src, **options), tilewise.stats(scene, **options)
    assert (remote.count, remote.mean, remote.std) == (local.count, local.mean, local.std)
    assert remote.percentiles == local.percentiles
    np.testing.assert_array_equal(remote.histogram, local.histogram)


def test_batch_outputs_and_tables_in_object_storage_are_refused_naming_the_url(
    s3_server: S3Server, scene: Path, tmp_path: Path
) -> None:
    bucket = s3_server.bucket("collections")
    src = s3_server.upload(scene, f"{bucket}/in/scene.tif")
    refusals: list[tuple[Callable[[], Any], str]] = [
        (lambda: tilewise.batch(scene, ops="invert", out=f"{bucket}/out"), f"{bucket}/out: batch"),
        (
            lambda: tilewise.batch(scene, ops="invert", stack=f"{bucket}/s.npy"),
            f"{bucket}/s.npy: batch",
        ),
        (
            lambda: tilewise.measure(src, detect="regions:threshold=1", output=f"{bucket}/t.csv"),
            f"{bucket}/t.csv: tables are written to a local file",
        ),
        (
            lambda: tilewise.measure(
                src, detect="regions:threshold=1", labels=f"{bucket}/l.zarr", executor="serial"
            ),
            f"{bucket}/l.zarr: the label image is written to a local file",
        ),
    ]
    for call, message in refusals:
        with pytest.raises(UsageError, match=re.escape(message)):
            call()
    assert s3_server.keys(f"{bucket}/") == ["in/scene.tif"]  # nothing written


@pytest.mark.dask
def test_dask_workers_read_and_write_the_bucket_given_only_urls(
    s3_server: S3Server,
    dask_scheduler: str,
    scene: Path,
    reference: np.ndarray[Any, Any],
    tmp_path: Path,
) -> None:
    bucket = s3_server.bucket("cluster")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    dst = f"{bucket}/out.zarr"
    report = run_here(src, dst, executor="dask", scheduler=dask_scheduler)
    assert report.done == report.total and report.executor["scheduler"] == dask_scheduler
    got = read_image(s3_server.download(dst, tmp_path / "out.zarr"))
    np.testing.assert_array_equal(got, reference)
