"""The fork server is started before the command loads, only for local run/batch."""

from __future__ import annotations

import pytest

from tilewise.cli import warm
from tilewise.executors import forkserver


@pytest.fixture
def started(monkeypatch):
    calls: list[object] = []
    monkeypatch.setattr(forkserver, "start_forkserver", lambda work: calls.append(work))
    return calls


@pytest.mark.parametrize(
    ("argv", "work"),
    [
        (["batch", "in/", "--out", "out/"], "batch"),
        (["run", "a.tif", "b.tif", "--op", "invert"], "run"),
        (["run", "a.tif", "b.tif", "--executor", "local"], "run"),
        (["batch", "in/", "--executor=local", "--out", "o"], "batch"),
    ],
)
def test_local_run_and_batch_start_the_server_with_their_worker_modules(started, argv, work):
    warm.start_for_argv(argv)
    assert started == [forkserver.WORK_MODULES[work]]


@pytest.mark.parametrize("output", ["b.zarr", "b.ZARR/"])
def test_a_zarr_path_adds_the_zarr_module_to_the_preload(started, output):
    warm.start_for_argv(["run", "a.tif", output, "--op", "invert"])
    assert started == [(*forkserver.WORK_MODULES["run"], "tilewise.io._zarr")]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["info", "a.tif"],
        ["--version"],
        ["batch", "--help"],
        ["run", "-h"],
        ["run", "a.tif", "b.tif", "--executor", "dask"],
        ["batch", "in/", "--executor=dask", "--out", "o"],
    ],
)
def test_anything_else_starts_nothing(started, argv):
    warm.start_for_argv(argv)
    assert started == []
