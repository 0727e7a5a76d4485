"""Library log lines go through tilewise's levels: silent by default and under -q, shown with -v."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import write_image
from tilewise.cli import logs


def tilewise_cmd(*args: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


@pytest.mark.dask
def test_a_quiet_dask_run_prints_nothing(tmp_path):
    pytest.importorskip("distributed")
    src = write_image(tmp_path / "in.tif", np.zeros((64, 64), np.uint8))
    proc = tilewise_cmd(
        *["run", str(src), str(tmp_path / "out.zarr"), "--op", "invert", "--tile", "32"],
        *["--executor", "dask", "--workers", "1", "-q"],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_levels_and_a_users_dask_setting_is_kept(monkeypatch):
    monkeypatch.setenv("DASK_LOGGING__DISTRIBUTED", "debug")
    saved = {name: logging.getLogger(name).level for name in ("tilewise", *logs.LIBRARIES)}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logs.route_logging(0, quiet=True)
        assert os.environ["DASK_LOGGING__DISTRIBUTED"] == "debug"
        assert logging.getLogger("tifffile").getEffectiveLevel() > logging.CRITICAL
        logs.route_logging(1, quiet=False)
        assert logging.getLogger("distributed").level == logging.WARNING
        assert logging.getLogger("tilewise").level == logging.INFO
    finally:
        for name, was in saved.items():
            logging.getLogger(name).setLevel(was)
        for handler in root.handlers:
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
