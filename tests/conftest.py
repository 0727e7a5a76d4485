"""Shared fixtures: small deterministic images in every dtype and band count, written to files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import settings

from tilewise.testing.samples import photo_mosaic

# No test asserts a wall-clock time; hypothesis's per-example deadline (200 ms) would,
# and flakes on a loaded 2-core machine. Failures still shrink and replay as usual.
settings.register_profile("tilewise", deadline=None)
settings.load_profile("tilewise")

# Worker processes of these tests must find the test helpers (tests/faults.py).
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
)

DTYPES = ("uint8", "uint16", "float32")


def make_image(
    shape: tuple[int, int], dtype: str = "uint8", bands: int = 1, seed: int = 0
) -> np.ndarray[Any, Any]:
    """A photo-like image (structure + noise) scaled to ``dtype``, with ``bands`` bands."""
    layers = []
    for band in range(bands):
        base = photo_mosaic(shape, block=256, seed=seed + band, noise=6.0).astype(np.float64)
        layers.append(base)
    image = layers[0] if bands == 1 else np.stack(layers, axis=-1)
    if dtype == "uint8":
        return image.astype(np.uint8)
    if dtype == "uint16":
        return (image * 257).astype(np.uint16)
    if dtype == "int16":
        return (image * 100 - 12000).astype(np.int16)
    return (image / 255.0).astype(dtype)


def write_image(path: Path, image: np.ndarray[Any, Any], **kwargs: Any) -> Path:
    """Write ``image`` in the format named by ``path``'s extension."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        options: dict[str, Any] = {"tile": (128, 128), "compression": "deflate"}
        options.update(kwargs)
        photometric = "rgb" if image.ndim == 3 and image.shape[2] == 3 else "minisblack"
        tifffile.imwrite(path, image, photometric=photometric, **options)
    elif suffix == ".zarr":
        zarr.create_array(path, data=image, chunks=(256, 256, *image.shape[2:]))
    elif suffix == ".npy":
        np.save(path, image)
    else:
        raise ValueError(suffix)
    return path


def read_image(path: Path | str) -> np.ndarray[Any, Any]:
    """Read a whole output back for comparison."""
    path = Path(path)
    if path.suffix == ".zarr":
        return np.asarray(zarr.open_array(path, mode="r")[...])
    if path.suffix == ".npy":
        return np.load(path)
    return tifffile.imread(path)


@pytest.fixture
def image_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write a test image and return its path."""

    def make(
        shape: tuple[int, int] = (301, 257),
        dtype: str = "uint8",
        bands: int = 1,
        name: str = "in.tif",
        seed: int = 0,
        **kwargs: Any,
    ) -> Path:
        return write_image(tmp_path / name, make_image(shape, dtype, bands, seed), **kwargs)

    return make


def leftovers(directory: Path) -> list[str]:
    """Hidden temp/partial files tilewise might leave behind in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture
def opened() -> Any:
    """Factory: open a source for the test to look at (``io.open_source``, or ``cls(spec)``);
    every source it opened is closed when the test ends."""
    from tilewise import io

    sources: list[Any] = []

    def open_(target: Any, cls: Any = None) -> Any:
        spec = target if isinstance(target, io.SourceSpec) else io.SourceSpec(str(target))
        source = io.open_source(spec) if cls is None else cls(spec)
        sources.append(source)
        return source

    yield open_
    for source in sources:
        source.close()


@pytest.fixture(scope="module")
def dask_scheduler() -> Any:
    """A LocalCluster of two single-threaded worker processes on 127.0.0.1; its address.

    Module-scoped: its workers are gone before later modules count child processes.
    The workers inherit this process's environment as it is when the cluster starts.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address
