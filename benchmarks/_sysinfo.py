"""Describe the machine and the package versions a benchmark ran with."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

DISTRIBUTIONS: tuple[str, ...] = (
    "tilewise",
    "numpy",
    "opencv-python-headless",
    "tifffile",
    "imagecodecs",
    "zarr",
    "scikit-image",
    "scipy",
    "dask",
    "distributed",
    "dask-image",
    "pyvips",
    "psutil",
)


def cpu_model() -> str:
    """The ``model name`` line of ``/proc/cpuinfo``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float:
    """Physical memory in GiB (``MemTotal`` of ``/proc/meminfo``)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def libvips_version(python: str = sys.executable) -> str | None:
    """libvips version as seen by pyvips (in a subprocess: it loads a shared library)."""
    code = "import pyvips; print('%d.%d.%d' % tuple(pyvips.version(i) for i in range(3)))"
    try:
        proc = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def versions() -> dict[str, str | None]:
    """Installed versions of the relevant distributions (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["libvips"] = libvips_version()
    return out


def machine() -> dict[str, object]:
    """nproc, usable CPUs, CPU model, memory, kernel and thread-related environment."""
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "mem_total_gib": round(mem_total_gib(), 1),
        "kernel": platform.release(),
        "env": {
            k: os.environ[k]
            for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "VIPS_CONCURRENCY")
            if k in os.environ
        },
    }
