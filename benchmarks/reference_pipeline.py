"""Run the reference pipeline with every peer (and tilewise) and tabulate the results.

Reference data (made if missing, in ``--workdir``): an N x N photo-like uint8 image as a
tiled deflate BigTIFF and as ``.npy``.  Reference pipeline: Gaussian sigma 4 with a
33-tap kernel (radius 16), then threshold at 127 -> 0/255 uint8.

Each peer runs as its own subprocess, measured as a whole process tree by ``_measure``
(median of ``--repeat`` runs after one warm-up): wall s, CPU s (user+sys of the tree),
peak PSS summed over the tree.  Afterwards every output is compared pixel by pixel with
the whole-image result it should equal.

Usage::

    python benchmarks/reference_pipeline.py [--size 16384] [--repeat 3]
        [--only opencv_npy,pool_halo,...] [--workdir /tmp/tilewise-bench] [--save PREFIX]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import _sysinfo
from _measure import Summary, measure
from _verify import (
    Diff,
    compare,
    float64_reference,
    load_output,
    opencv_reference,
    scipy_reference,
)
from make_reference import write_reference

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / "peers"
PY = sys.executable
TILEWISE = str(Path(sys.executable).parent / "tilewise")


@dataclass(frozen=True)
class Inputs:
    """Paths of the reference data."""

    tif: Path
    npy: Path
    out: Path  # directory for outputs


@dataclass(frozen=True)
class Peer:
    """One tool/route of the comparison.

    ``ref`` names the whole-image result the output is held against: "opencv" (the
    33-tap reflect-101 OpenCV result), "scipy" (scipy's own whole-image gaussian_filter,
    for dask-image, which applies scipy per chunk) or "f64nearest" (an exact float64
    33-tap Gaussian with edge pixels copied, which is what libvips computes with a float
    mask).  Every output is also compared with the OpenCV result.
    """

    name: str
    tool: str
    route: str
    argv: Callable[[Inputs, Path], list[str]]
    output: str
    ref: str = "opencv"
    seam_tile: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    needs: str | None = None  # "pyvips" or "tilewise": skipped when missing


def _script(script: str, src: str, *extra: str) -> Callable[[Inputs, Path], list[str]]:
    """Command of ``peers/<script>.py`` reading the ``src`` ("npy" or "tif") reference."""

    def argv(inp: Inputs, out: Path) -> list[str]:
        path = inp.npy if src == "npy" else inp.tif
        return [PY, str(PEERS_DIR / f"{script}.py"), str(path), str(out), *extra]

    return argv


def _tilewise(inp: Inputs, out: Path) -> list[str]:
    return [
        TILEWISE,
        "run",
        str(inp.tif),
        str(out),
        "--op",
        "gaussian:sigma=4",
        "--op",
        "threshold:value=127",
        "--workers",
        "2",
        "--tile",
        "2048",
        "--overwrite",
        "-q",
    ]


VIPS_ENV = {"VIPS_CONCURRENCY": "2"}

PEERS: tuple[Peer, ...] = (
    Peer(
        "opencv_npy",
        "OpenCV, whole image in RAM, 2 threads",
        ".npy → .npy",
        _script("opencv_whole", "npy"),
        "opencv_npy.npy",
    ),
    Peer(
        "opencv_tif",
        "OpenCV, whole image, reading the TIFF",
        "TIFF → .npy",
        _script("opencv_whole", "tif"),
        "opencv_tif.npy",
    ),
    Peer(
        "pyvips_int",
        "pyvips, integer mask (default precision)",
        "TIFF → tiled TIFF",
        _script("pyvips_int", "tif"),
        "pyvips_int.tif",
        ref="f64nearest",
        env=VIPS_ENV,
        needs="pyvips",
    ),
    Peer(
        "pyvips_float",
        "pyvips, float mask",
        "TIFF → tiled TIFF",
        _script("pyvips_float", "tif"),
        "pyvips_float.tif",
        ref="f64nearest",
        env=VIPS_ENV,
        needs="pyvips",
    ),
    Peer(
        "daskimage_threads",
        "dask-image gaussian_filter, threads",
        "TIFF → Zarr",
        _script("daskimage_threads", "tif"),
        "daskimage_threads.zarr",
        ref="scipy",
    ),
    Peer(
        "daskimage_cluster",
        "dask-image, LocalCluster 2 processes",
        "TIFF → Zarr",
        _script("daskimage_cluster", "tif"),
        "daskimage_cluster.zarr",
        ref="scipy",
    ),
    Peer(
        "skimage_apply_parallel",
        "skimage apply_parallel + OpenCV kernel",
        ".npy → .npy (in RAM)",
        _script("skimage_apply_parallel", "npy"),
        "skimage_apply_parallel.npy",
    ),
    Peer(
        "pool_nohalo",
        "multiprocessing.Pool, 1024 tiles, no halo",
        ".npy → .npy",
        _script("pool_halo", "npy", "--halo", "0"),
        "pool_nohalo.npy",
        seam_tile=1024,
    ),
    Peer(
        "pool_halo",
        "multiprocessing.Pool, 1024 tiles, 16-px halo",
        ".npy → .npy",
        _script("pool_halo", "npy", "--halo", "16"),
        "pool_halo.npy",
        seam_tile=1024,
    ),
    Peer(
        "floor_tif",
        "the floor: hand-written, 2 processes, no framework",
        "TIFF → tiled TIFF",
        lambda inp, out: [PY, str(HERE / "floor.py"), str(inp.tif), str(out), "--workers", "2"],
        "floor.tif",
    ),
    Peer(
        "floor_zarr",
        "the floor: hand-written, 2 processes, no framework",
        "TIFF → Zarr",
        lambda inp, out: [PY, str(HERE / "floor.py"), str(inp.tif), str(out), "--workers", "2"],
        "floor.zarr",
    ),
    Peer(
        "tilewise_tif",
        "tilewise, 2 workers, 2048 tiles",
        "TIFF → tiled TIFF",
        _tilewise,
        "tilewise.tif",
        seam_tile=2048,
        needs="tilewise",
    ),
    Peer(
        "tilewise_zarr",
        "tilewise, 2 workers, 2048 tiles",
        "TIFF → Zarr",
        _tilewise,
        "tilewise.zarr",
        seam_tile=2048,
        needs="tilewise",
    ),
)


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(msg, file=sys.stderr, flush=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def ensure_inputs(workdir: Path, size: int) -> Inputs:
    """Generate the reference TIFF and .npy in ``workdir`` unless they already exist."""
    workdir.mkdir(parents=True, exist_ok=True)
    inp = Inputs(workdir / f"ref-{size}.tif", workdir / f"ref-{size}.npy", workdir / "out")
    inp.out.mkdir(exist_ok=True)
    if not (inp.tif.exists() and inp.npy.exists()):
        log(f"generating {inp.tif} and {inp.npy} ...")
        for stale in workdir.glob(f"expected-*-{size}.npy"):
            stale.unlink()
        ratio = write_reference(inp.tif, size, npy=inp.npy)
        log(f"  deflate ratio {ratio:.3f}")
    return inp


REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "opencv": opencv_reference,
    "scipy": scipy_reference,
    "f64nearest": float64_reference,
}

REFERENCE_TEXT = {
    "opencv": "",
    "scipy": " (vs scipy whole image)",
    "f64nearest": " (vs float64 Gaussian, copied edges)",
}


def expected(kind: str, inp: Inputs, size: int) -> np.ndarray:
    """Whole-image reference result ``kind`` (see ``REFERENCES``), cached in the workdir."""
    cache = inp.tif.parent / f"expected-{kind}-{size}.npy"
    if not cache.exists():
        log(f"computing the whole-image {kind} result ...")
        img = np.load(inp.npy)
        result = REFERENCES[kind](img)
        del img
        np.save(cache, result)
    return np.load(cache, mmap_mode="r")


def missing_requirement(peer: Peer) -> str | None:
    """Why ``peer`` cannot run here, or None."""
    if peer.needs == "tilewise" and not os.access(TILEWISE, os.X_OK):
        return f"tilewise CLI not found at {TILEWISE}"
    if peer.needs == "pyvips" and _sysinfo.libvips_version() is None:
        return "pyvips cannot load libvips (apt-get install libvips42)"
    return None


@dataclass
class Result:
    """Measurement and verification of one peer."""

    peer: Peer
    argv: list[str]
    summary: Summary | None = None
    skipped: str | None = None
    diff: Diff | None = None
    diff_opencv: Diff | None = None

    def exact_text(self) -> str:
        """The "exact" column."""
        if self.diff is None:
            return "—"
        d = self.diff
        if self.peer.name == "opencv_npy" and d.label == "exact":
            return "reference"
        own = REFERENCE_TEXT[self.peer.ref]
        if d.label == "exact":
            return f"exact{own}"
        if d.label == "seams":
            return f"**seams**: {d.n_diff} px at tile borders"
        if not d.shape_ok:
            return d.label
        return f"approximate{own}: {d.n_diff} px differ ({d.n_diff_interior} interior)"

    def opencv_text(self) -> str:
        """Pixels differing from the OpenCV whole-image result (interior in brackets)."""
        d = self.diff_opencv
        if d is None:
            return "—"
        if not d.shape_ok:
            return d.label
        return f"{d.n_diff} ({d.n_diff_interior})"

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly representation."""
        return {
            "name": self.peer.name,
            "tool": self.peer.tool,
            "route": self.peer.route,
            "command": shlex.join(self.argv),
            "env": self.peer.env,
            "skipped": self.skipped,
            "measure": self.summary.to_dict() if self.summary else None,
            "diff": self.diff.to_dict() if self.diff else None,
            "diff_vs_opencv": self.diff_opencv.to_dict() if self.diff_opencv else None,
            "reference_kind": self.peer.ref,
        }


def run_peer(peer: Peer, inp: Inputs, repeat: int, timeout: float, interval: float) -> Result:
    """Measure one peer (warm-up + ``repeat`` runs)."""
    out = inp.out / peer.output
    result = Result(peer, peer.argv(inp, out))
    result.skipped = missing_requirement(peer)
    if result.skipped:
        log(f"{peer.name}: skipped ({result.skipped})")
        return result
    log(f"{peer.name}: {shlex.join(result.argv)}")
    result.summary = measure(
        result.argv,
        repeat=repeat,
        env={**os.environ, **peer.env},
        before_each=lambda: _remove(out),
        timeout=timeout,
        interval=interval,
        log=log,
    )
    if not result.summary.ok:
        last = (result.summary.runs or result.summary.warmup)[-1]
        log(f"  FAILED rc={last.returncode}:\n{last.stderr_tail}")
    return result


def verify(result: Result, inp: Inputs, size: int) -> None:
    """Compare a successful peer's output with its whole-image reference(s)."""
    if result.summary is None or not result.summary.ok:
        return
    out = load_output(inp.out / result.peer.output)
    ref_cv = expected("opencv", inp, size)
    result.diff_opencv = compare(out, ref_cv, seam_tile=result.peer.seam_tile)
    if result.peer.ref == "opencv":
        result.diff = result.diff_opencv
    else:
        ref = expected(result.peer.ref, inp, size)
        result.diff = compare(out, ref, seam_tile=result.peer.seam_tile)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(
    results: list[Result],
    meta: dict[str, object],
    size: int,
    mach: dict[str, object],
    vers: dict[str, str | None],
) -> str:
    """The report: context, table, commands."""
    lines = [
        f"# Reference pipeline, peers — {meta['date']}",
        "",
        f"- Image: {size} × {size} uint8 ({size * size / 1e6:.0f} MPix), photo mosaic + noise, "
        f"tiled BigTIFF 512² deflate, ratio {meta['deflate_ratio']:.3f}",
        "- Pipeline: Gaussian σ=4, 33 taps (radius 16), threshold 127 → 0/255 uint8",
        f"- Median of {meta['repeat']} runs after 1 warm-up; whole process tree; page cache warm",
        f"- Machine: nproc={mach['nproc']}, {mach['cpu_model']}, {mach['mem_total_gib']} GiB, "
        f"Linux {mach['kernel']}; load average (1/5/15 min) {meta['loadavg_start']} at start, "
        f"{meta['loadavg_end']} after the last peer (other work on the machine shows here)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v is not None),
        f"- Command: `{meta['command']}`",
        "",
        "| tool | route | wall s | CPU s | tree peak PSS MiB | MPix/s | exact | "
        "px ≠ OpenCV whole (interior) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary
        if r.skipped or s is None:
            cells = ["—"] * 4 + [f"skipped: {r.skipped}", "—"]
        elif not s.ok:
            cells = ["—"] * 4 + ["FAILED (see JSON)", "—"]
        else:
            mpix = size * size / 1e6 / s.wall_s
            cells = [
                _fmt(s.wall_s),
                _fmt(s.cpu_s),
                _fmt(s.peak_pss_mib, 0),
                _fmt(mpix, 0),
                r.exact_text(),
                r.opencv_text(),
            ]
        lines.append("| " + " | ".join([r.peer.tool, r.peer.route, *cells]) + " |")
    lines += ["", "Commands (one subprocess each; `env` shown where set):", ""]
    for r in results:
        env = " ".join(f"{k}={v}" for k, v in r.peer.env.items())
        lines.append(f"- `{r.peer.name}`: `{(env + ' ') if env else ''}{shlex.join(r.argv)}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated peer names")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench"))
    parser.add_argument("--timeout", type=float, default=900, help="per run, seconds")
    parser.add_argument("--interval", type=float, default=0.1, help="PSS sampling period, s")
    parser.add_argument("--save", type=Path, default=None, help="write PREFIX.md and PREFIX.json")
    parser.add_argument("--keep-outputs", action="store_true")
    parser.add_argument("--list", action="store_true", help="list peer names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for p in PEERS:
            print(f"{p.name:24s} {p.tool} ({p.route})")
        return 0
    only = {s for s in args.only.split(",") if s}
    unknown = only - {p.name for p in PEERS}
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    peers = [p for p in PEERS if not only or p.name in only]

    t0 = time.perf_counter()
    load_start = os.getloadavg()
    inp = ensure_inputs(args.workdir, args.size)
    results = [run_peer(p, inp, args.repeat, args.timeout, args.interval) for p in peers]
    load_end = os.getloadavg()
    for r in results:
        verify(r, inp, args.size)
        if not args.keep_outputs:
            _remove(inp.out / r.peer.output)

    mach = _sysinfo.machine()
    vers = _sysinfo.versions()
    meta: dict[str, object] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "size": args.size,
        "repeat": args.repeat,
        "deflate_ratio": args.size * args.size / inp.tif.stat().st_size,
        "command": shlex.join([Path(PY).name, *sys.argv]),
        "machine": mach,
        "versions": vers,
        "total_s": round(time.perf_counter() - t0, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
    }
    report = markdown(results, meta, args.size, mach, vers)
    payload = {"meta": meta, "results": [r.to_dict() for r in results]}
    print(report)
    for prefix in [args.workdir / "results", *([args.save] if args.save else [])]:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        prefix.with_name(prefix.name + ".md").write_text(report)
        prefix.with_name(prefix.name + ".json").write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {prefix}.md and {prefix}.json")
    ok = all(r.skipped or (r.summary and r.summary.ok) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
