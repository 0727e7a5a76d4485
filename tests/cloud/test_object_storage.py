"""Inputs and outputs in object storage: a real S3 server (moto) and an HTTP server with ranges.

Most runs use the serial executor in this process (the storage code is the same a
worker runs); one goes through the real command with two worker processes, and
the exit codes are the command's. Every tiled result is compared bit for bit
with the same run on local files.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import tilewise
from tests.cloud.conftest import (
    DENIED_BUCKET,
    OP_LIST,
    OPS,
    Faults,
    HttpServer,
    S3Server,
    run_here,
    tilewise_cmd,
)
from tests.conftest import read_image
from tilewise.errors import AccessDeniedError, OutputExistsError
from tilewise.geometry import Window
from tilewise.io import local_state


def test_tiff_in_and_out_of_a_bucket_is_exact(
    s3_server: S3Server, scene: Path, reference: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    bucket = s3_server.bucket("scenes")
    src = s3_server.upload(scene, f"{bucket}/in/scene.tif")
    dst = f"{bucket}/out/result.tif"
    done = tilewise_cmd("run", src, dst, *OPS, "--tile", "128", "--workers", "2", "-q")
    assert done.returncode == 0, done.stderr
    assert s3_server.keys(f"{bucket}/out/") == ["out/result.tif"]  # no spool left behind
    got = tifffile.imread(s3_server.download(dst, tmp_path / "result.tif"))
    np.testing.assert_array_equal(got, reference)


def test_zarr_out_to_a_bucket_and_back_in_is_exact(
    s3_server: S3Server, scene: Path, reference: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    bucket = s3_server.bucket("arrays")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    dst = f"{bucket}/result.zarr"
    run_here(src, dst)
    keys = s3_server.keys(dst)
    assert "result.zarr/zarr.json" in keys and not any("partial" in k for k in keys)
    np.testing.assert_array_equal(
        read_image(s3_server.download(dst, tmp_path / "a.zarr")), reference
    )
    # the Zarr output, read back from the bucket as an input, is the same image
    report = tilewise.run(dst, tmp_path / "copy.npy", "invert", executor="serial", progress=False)
    assert report.ok
    np.testing.assert_array_equal(np.load(tmp_path / "copy.npy"), 255 - reference)


def test_an_existing_output_needs_overwrite(s3_server: S3Server, scene: Path) -> None:
    bucket = s3_server.bucket("arrays")
    src = s3_server.upload(scene, f"{bucket}/twice.tif")
    run_here(src, f"{bucket}/twice.zarr")
    with pytest.raises(OutputExistsError, match=r"s3://arrays/twice\.zarr: already exists"):
        run_here(src, f"{bucket}/twice.zarr")
    run_here(src, f"{bucket}/twice.zarr", overwrite=True)


def test_info_and_plan_take_urls(s3_server: S3Server, scene: Path) -> None:
    src = s3_server.upload(scene, f"{s3_server.bucket('scenes')}/info/scene.tif")
    facts = tilewise.info(src)
    assert facts["shape"] == [600, 520] and facts["path"] == src
    assert facts["storage"] == "object (byte ranges)"
    planned = tilewise.plan(src, OP_LIST, tile=256)
    assert planned["grid"]["tile_shape"] == [256, 256]


def test_http_range_input_is_exact_and_read_by_ranges(
    http_server: HttpServer, scene: Path, reference: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    (http_server.root / "scene.tif").write_bytes(scene.read_bytes())
    before = http_server.handler.ranges_served
    run_here(http_server.url("scene.tif"), tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), reference)
    assert http_server.handler.ranges_served > before  # read by Range requests


def test_a_window_fetches_only_its_segments(s3_server: S3Server, scene: Path, opened: Any) -> None:
    src = s3_server.upload(scene, f"{s3_server.bucket('scenes')}/ranges/scene.tif")
    source = opened(src)
    header = source.fetched
    window = Window(130, 130, 100, 100)  # inside one 128-px TIFF tile
    image = source.read(window)
    np.testing.assert_array_equal(image, tifffile.imread(scene)[window.slices])
    tile_bytes = int(source._page.databytecounts[1 * source._across + 1])
    assert source.fetched - header <= max(tile_bytes, 64 * 1024)


def test_503s_are_retried_and_the_run_succeeds(
    s3_server: S3Server,
    faults: Faults,
    scene: Path,
    reference: np.ndarray[Any, Any],
    tmp_path: Path,
) -> None:
    bucket = s3_server.bucket("flaky")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    faults.every, faults.budget = 3, 40
    dst = f"{bucket}/out.zarr"
    run_here(src, dst, retries=0)
    assert faults.failed > 0  # the server did answer 503
    faults.every = 0
    np.testing.assert_array_equal(
        read_image(s3_server.download(dst, tmp_path / "f.zarr")), reference
    )


@pytest.mark.parametrize("which", ["missing key", "denied bucket"])
def test_missing_or_denied_input_exits_2_naming_the_url(
    s3_server: S3Server, which: str, tmp_path: Path
) -> None:
    if which == "missing key":
        url = f"{s3_server.bucket('scenes')}/no/such.tif"
    else:
        url = f"s3://{DENIED_BUCKET}/scene.tif"
    done = tilewise_cmd("run", url, str(tmp_path / "out.tif"), "--op", "invert")
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert url in line
    assert ("no such object" if which == "missing key" else "access denied") in line
    assert "testing" not in done.stderr  # no credentials in messages


def test_denied_output_bucket_is_refused_before_work(s3_server: S3Server, scene: Path) -> None:
    with pytest.raises(AccessDeniedError, match=f"s3://{DENIED_BUCKET}/out\\.zarr"):
        run_here(scene, f"s3://{DENIED_BUCKET}/out.zarr")


def test_resume_after_sigkill_of_the_main_process(
    s3_server: S3Server, scene: Path, tmp_path: Path
) -> None:
    from tests.runner.helpers import journal_lines, start_cli, wait_for_journal

    bucket = s3_server.bucket("resumed")
    src = s3_server.upload(scene, f"{bucket}/scene.tif")
    dst = f"{bucket}/out.zarr"
    slow = ("--op", "tests.faults.slow:seconds=0.3", "--op", "invert")
    args = ("run", src, dst, *slow, "--tile", "128", "--workers", "2", "-q")
    journal_stand_in = local_state(dst)
    proc = start_cli(*args)
    try:
        wait_for_journal(journal_stand_in, 6, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert not any(k.endswith("/zarr.json") for k in s3_server.keys(dst))  # not an array yet
    done_before = journal_lines(journal_stand_in)
    resumed = tilewise_cmd(*args[:-1], "--resume", "--report", str(tmp_path / "r.json"))
    assert resumed.returncode == 0, resumed.stderr
    got = read_image(s3_server.download(dst, tmp_path / "out.zarr"))
    np.testing.assert_array_equal(got, 255 - tifffile.imread(scene))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["tiles"]["skipped"] >= done_before > 0


def test_stacks_in_object_storage_are_refused_not_read_as_one_page(
    s3_server: S3Server, tmp_path: Path
) -> None:
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(
        stack, np.zeros((3, 64, 48), np.uint8), tile=(16, 16), photometric="minisblack"
    )
    bucket = s3_server.bucket("stacks")
    src = s3_server.upload(stack, f"{bucket}/stack.tif")
    for args in (["info", src], ["run", src, str(tmp_path / "out.tif"), "--op", "invert"]):
        result = tilewise_cmd(*args)
        assert result.returncode == 2, result.stderr
        assert "a stack of planes in object storage is not read yet" in result.stderr
    result = tilewise_cmd("run", str(stack), f"{bucket}/out.zarr", "--op", "invert")
    assert result.returncode == 2, result.stderr
    assert "a stack of planes is not written to object storage yet" in result.stderr
    assert s3_server.keys(f"{bucket}/out.zarr") == []
