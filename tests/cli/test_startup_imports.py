"""A plain local ``run`` or ``batch`` loads only what it uses in the main process.

A short command's start-up is most of its time, and the main process imports while
the workers' fork server does: whatever it loads beyond its needs delays the first
tile. Each test runs the command in a fresh interpreter and lists ``sys.modules``
at its end — which modules, not how long they took.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tifffile

#: Never needed by a plain local run or batch on local TIFF and .npy files.
ELSEWHERE = (
    "dask",  # the Dask executor
    "distributed",
    "matplotlib",  # the report's tile map
    "pandas",  # measurement tables
    "rasterio",  # inputs only GDAL reads
    "scipy",  # measurements and some ops
    "statistics",  # run lengths, once more tiles than workers are dispatched
    "tilewise.io._remote",  # object storage
    "tilewise.measurements",
    "zarr",  # no .zarr path
)

_COMMAND = """
import sys
from tilewise.cli.main import main
sys.argv = ["tilewise", *sys.argv[1:]]
try:
    main()
finally:
    with open({out!r}, "w") as fh:
        fh.write("\\n".join(sorted(sys.modules)))
"""


def _modules_after(args: Sequence[str], listing: Path) -> set[str]:
    """Run ``tilewise ARGS`` in a fresh interpreter; the modules loaded by its end."""
    code = _COMMAND.format(out=str(listing))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    return set(listing.read_text().split())


def _loaded(modules: set[str], names: Sequence[str]) -> list[str]:
    return sorted(
        name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def test_a_plain_batch_loads_no_run_machinery_it_does_not_use(tmp_path: Path) -> None:
    files = []
    for index in range(3):
        path = tmp_path / f"img{index}.tif"
        tifffile.imwrite(path, np.full((64, 48), index, np.uint8))  # one strip, as the bench
        files.append(str(path))
    out = tmp_path / "stack.npy"
    args = ["batch", *files, "--stack", str(out), "--op", "resize:shape=32x32"]
    modules = _modules_after([*args, "--workers", "2", "-q"], tmp_path / "modules.txt")

    assert np.load(out).shape == (3, 32, 32)
    assert {"tilewise.collection.run", "tilewise.runner.lifecycle"} <= modules  # it ran here
    not_for_a_batch = ("tilewise.api", "tilewise.runner.plan", "tilewise.runner.run")
    assert _loaded(modules, (*ELSEWHERE, *not_for_a_batch, "google_crc32c")) == []


def test_a_plain_run_loads_no_batch_or_storage_machinery(
    image_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = image_file((256, 256))  # 4 tiles on 2 workers: dispatched one by one
    out = tmp_path / "out.tif"
    args = ["run", str(src), str(out), "--op", "gaussian:sigma=2", "--tile", "128"]
    modules = _modules_after([*args, "--workers", "2", "-q"], tmp_path / "modules.txt")

    assert tifffile.imread(out).shape == (256, 256)
    assert {"tilewise.api", "tilewise.runner.run"} <= modules  # it ran here
    # the TIFF writer's checksums are the workers' (preloaded there) and --resume's
    assert _loaded(modules, (*ELSEWHERE, "tilewise.collection.run", "google_crc32c")) == []


def test_the_workers_preload_leaves_the_main_process_machinery_out(tmp_path: Path) -> None:
    # The fork server imports this before the first worker can start: it is start-up too.
    code = (
        "import importlib, sys\n"
        "from tilewise.executors.forkserver import preload\n"
        "for work in sys.argv[1:]:\n"
        "    for name in preload(work):\n"
        "        importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    main_process_only = (
        "tilewise.api",
        "tilewise.collection.run",
        "tilewise.runner.journal",
        "tilewise.runner.lifecycle",
        "tilewise.runner.plan",
        "tilewise.runner.report",
    )
    for work, its_own in (("batch", "tilewise.collection.work"), ("run", "tilewise.runner.work")):
        proc = subprocess.run(
            [sys.executable, "-c", code, work], capture_output=True, text=True, check=True
        )
        modules = set(proc.stdout.split())
        assert its_own in modules
        assert _loaded(modules, (*ELSEWHERE, *main_process_only)) == [], work


def test_a_batch_worker_reads_small_tiffs_without_tifffile(tmp_path: Path) -> None:
    # Each worker would import tifffile (and imagecodecs) after the fork, for nothing:
    # a small one-strip TIFF is read by its own header parser (io/_tiff_whole.py).
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.arange(64 * 48, dtype=np.uint16).reshape(64, 48))
    code = (
        "import importlib, sys\n"
        "from tilewise.executors.forkserver import preload\n"
        "for name in preload('batch'):\n"
        "    importlib.import_module(name)\n"
        "from tilewise.geometry import Window\n"
        "from tilewise.io import open_source\n"
        "source = open_source(sys.argv[1])\n"
        "print(source.read(Window(0, 0, 64, 48)).sum())\n"
        "source.close()\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    total, *modules = proc.stdout.split()
    assert int(total) == sum(range(64 * 48))
    assert _loaded(set(modules), ("tifffile", "imagecodecs", "tilewise.io._whole")) == []
