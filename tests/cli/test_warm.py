"""The fork server is started before the command loads, only for local run/batch."""

from __future__ import annotations

import pytest

from tilewise.cli import warm
from tilewise.executors import forkserver


@pytest.fixture
def started(monkeypatch):
    calls: list[str] = []
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
    assert started == [work]


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
