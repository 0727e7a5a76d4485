"""The same batch on a Dask cluster (real worker processes on 127.0.0.1) gives the same files."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import tilewise
from tests.collection.conftest import GOOD, read_whole

pytestmark = pytest.mark.dask

OPS = ["resize:scale=0.5", "pad:width=2,mode=edge"]


def _dask_options(address: str) -> dict[str, Any]:
    """How to point the dask executor at a scheduler (its keyword is the executor's choice)."""
    module = pytest.importorskip("tilewise.executors.dask")
    accepted = inspect.signature(module.DaskExecutor).parameters
    for name in ("address", "scheduler_address", "scheduler", "cluster_address"):
        if name in accepted:
            return {name: address}
    pytest.skip(f"DaskExecutor takes none of the known address keywords: {list(accepted)}")


def test_dask_and_local_executors_write_identical_outputs(collection, tmp_path, dask_scheduler):
    pytest.importorskip("tilewise.executors.dask")
    options = _dask_options(dask_scheduler)
    on_dask = tilewise.batch(
        collection, out=tmp_path / "dask", ops=OPS, executor="dask", workers=2, **options
    )
    assert on_dask.ok, on_dask.failures
    assert tilewise.batch(collection, out=tmp_path / "local", ops=OPS, workers=2).ok
    for name in GOOD:
        np.testing.assert_array_equal(
            read_whole(tmp_path / "dask" / name), read_whole(tmp_path / "local" / name)
        )
