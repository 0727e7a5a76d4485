"""Collection benchmark: N small TIFFs -> resize to 256x256 (INTER_AREA) -> one stacked .npy.

Data (made once in ``--workdir``): N photo-like 512 x 512 uint8 TIFFs
(``tilewise.testing.samples.photo_block``; ``--compression none``, the default,
writes them as ``tifffile.imwrite`` does by default: one uncompressed strip;
``deflate`` compresses them) spread over 10 sub-folders, and ``files.txt``
listing them.

Contenders, each its own subprocess, all on 2 processes (the serial loop on 1):

* ``serial``       a plain loop: tifffile.imread -> cv2.resize -> row of an open_memmap
* ``pool_map``     ``multiprocessing.Pool(2).map`` returning arrays; the main process stacks them
* ``pool_shm``     Pool(2) workers writing rows into a ``multiprocessing.shared_memory`` array
* ``dask_bag``     ``dask.bag.from_sequence(...).map(...)`` with the processes scheduler
* ``tilewise``     ``tilewise batch @files.txt --stack OUT.npy --op resize:shape=256x256``

tilewise's bytecode is compiled first, as an installed package has it
(``_measure.compile_tilewise``). Measured like ``benchmarks/reference_pipeline.py``
(``_measure``): wall s, CPU s and peak PSS summed over the whole process tree
(sampled ~10x/s), plus the main process's own peak RSS (VmHWM), median of
``--repeat`` runs after a warm-up. Every output is checked equal to the serial loop's.

Usage::

    python benchmarks/collection.py [--files 2000] [--compression none|deflate] [--repeat 3]
        [--only serial,tilewise] [--workdir /tmp/tilewise-bench]
        [--save benchmarks/results/collection-DATE-2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
TILEWISE = str(Path(sys.executable).parent / "tilewise")
SIDE, OUT_SIDE, WORKERS, FOLDERS = 512, 256, 2, 10
PEERS = ("serial", "pool_map", "pool_shm", "dask_bag", "tilewise")


# -- the contenders (run in their own process by --run-peer) ------------------------------


def _load_resize(path: str) -> Any:
    import cv2
    import tifffile

    image = tifffile.imread(path)
    return cv2.resize(image, (OUT_SIDE, OUT_SIDE), interpolation=cv2.INTER_AREA)


def _single_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


_shm_view: Any = None


def _attach(name: str, count: int) -> None:
    global _shm_view
    from multiprocessing import shared_memory

    import numpy as np

    _single_thread()
    shm = shared_memory.SharedMemory(name=name)
    _shm_view = (shm, np.ndarray((count, OUT_SIDE, OUT_SIDE), np.uint8, buffer=shm.buf))


def _shm_row(job: tuple[int, str]) -> None:
    row, path = job
    _shm_view[1][row] = _load_resize(path)


def run_peer(name: str, listing: Path, out: Path) -> None:
    """One contender, end to end (this is the measured process)."""
    import numpy as np

    paths = listing.read_text().splitlines()
    count = len(paths)
    shape = (count, OUT_SIDE, OUT_SIDE)
    if name == "serial":
        _single_thread()
        stack = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=shape)
        for row, path in enumerate(paths):
            stack[row] = _load_resize(path)
        stack.flush()
    elif name == "pool_map":
        import multiprocessing

        with multiprocessing.Pool(WORKERS, initializer=_single_thread) as pool:
            arrays = pool.map(_load_resize, paths)
        np.save(out, np.stack(arrays))
    elif name == "pool_shm":
        import multiprocessing
        from multiprocessing import shared_memory

        shm = shared_memory.SharedMemory(create=True, size=count * OUT_SIDE * OUT_SIDE)
        try:
            with multiprocessing.Pool(
                WORKERS, initializer=_attach, initargs=(shm.name, count)
            ) as pool:
                pool.map(_shm_row, list(enumerate(paths)))
            np.save(out, np.ndarray(shape, np.uint8, buffer=shm.buf))
        finally:
            shm.close()
            shm.unlink()
    elif name == "dask_bag":
        import dask
        import dask.bag as db

        bag = db.from_sequence(paths, npartitions=WORKERS * 8).map(_load_resize)
        with dask.config.set(scheduler="processes", num_workers=WORKERS):
            arrays = bag.compute()
        np.save(out, np.stack(arrays))
    else:
        raise SystemExit(f"unknown peer {name}")


# -- the driver ---------------------------------------------------------------------------


def make_data(workdir: Path, files: int, compression: str) -> Path:
    """Write ``files`` TIFFs (once) and the list of them; return the list's path."""
    import tifffile

    from tilewise.testing.samples import photo_block

    folder = (
        workdir / f"collection-{files}"
        if compression == "none"
        else (workdir / f"collection-{files}-{compression}")
    )
    codec = None if compression == "none" else "zlib"
    listing = folder / "files.txt"
    if listing.exists() and len(listing.read_text().splitlines()) == files:
        return listing
    shutil.rmtree(folder, ignore_errors=True)
    paths = []
    start = time.perf_counter()
    for index in range(files):
        path = folder / f"f{index % FOLDERS}" / f"img{index:06d}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = photo_block((SIDE, SIDE), index, seed=1)
        tifffile.imwrite(path, image, photometric="minisblack", compression=codec)
        paths.append(str(path))
    listing.write_text("\n".join(paths) + "\n")
    print(f"wrote {files} TIFFs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return listing


def argv_for(name: str, listing: Path, out: Path) -> list[str]:
    """The command measured for one contender."""
    if name == "tilewise":
        return [
            TILEWISE, "batch", f"@{listing}", "--stack", str(out),
            "--op", f"resize:shape={OUT_SIDE}x{OUT_SIDE}",
            "--workers", str(WORKERS), "--overwrite", "-q",
        ]  # fmt: skip
    return [PY, str(HERE / "collection.py"), "--run-peer", name, "--list", str(listing), str(out)]


def measure_once(argv: list[str], timeout: float) -> dict[str, Any]:
    """One run: wall, CPU and peak PSS of the tree, and the main process's peak RSS."""
    from _measure import MIB, TreeSampler, _children_cpu_s

    cpu_before = _children_cpu_s()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeSampler(proc.pid, 0.1)
    sampler.start()
    _, err = proc.communicate(timeout=timeout)
    wall = time.perf_counter() - start
    sampler.stop()
    cpu = max(_children_cpu_s() - cpu_before, sampler.cpu_s)
    return {
        "rc": proc.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "tree_pss_mib": sampler.peak_pss_kib * 1024 / MIB,
        "main_hwm_mib": sampler.hwm_by_pid.get(proc.pid, 0) * 1024 / MIB,
        "procs": sampler.peak_procs,
        "stderr": err.decode(errors="replace")[-1500:],
    }


def verify(outputs: dict[str, Path]) -> dict[str, str]:
    """Compare every output with the serial loop's."""
    import numpy as np

    reference = np.load(outputs["serial"], mmap_mode="r") if "serial" in outputs else None
    verdicts = {}
    for name, path in outputs.items():
        if reference is None or not path.exists():
            verdicts[name] = "not checked"
            continue
        got = np.load(path, mmap_mode="r")
        same = got.shape == reference.shape and bool(np.array_equal(got, reference))
        verdicts[name] = "identical" if same else "DIFFERS"
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """Generate the data, measure every contender, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--compression", choices=("none", "deflate"), default="none")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(PEERS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--save", default=None, help="write PREFIX.md and PREFIX.json")
    parser.add_argument("--run-peer", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--list", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("output", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_peer:
        run_peer(args.run_peer, args.list, args.output)
        return 0
    sys.path.insert(0, str(HERE))
    import _sysinfo
    from _measure import compile_tilewise

    compile_tilewise()

    listing = make_data(args.workdir, args.files, args.compression)
    outdir = args.workdir / f"collection-out-{args.files}-{args.compression}"
    outdir.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n]
    results: dict[str, dict[str, Any]] = {}
    outputs = {}
    # Round-robin: every round runs each contender once, so a slow spell of a shared
    # machine falls on all of them alike; round 0 is the warm-up.
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: set[str] = set()
    for i in range(1 + args.repeat):
        for name in names:
            if name in failed:
                continue
            out = outdir / f"{name}.npy"
            out.unlink(missing_ok=True)
            for extra in outdir.glob(f".{name}.npy*"):
                extra.unlink()
            run = measure_once(argv_for(name, listing, out), args.timeout)
            tag = "warm-up" if i == 0 else f"run {i}"
            print(
                f"{name:9s} {tag}: rc={run['rc']} wall={run['wall_s']:.2f}s "
                f"cpu={run['cpu_s']:.2f}s tree PSS={run['tree_pss_mib']:.0f}MiB "
                f"main HWM={run['main_hwm_mib']:.0f}MiB",
                file=sys.stderr,
            )
            if run["rc"] != 0:
                print(run["stderr"], file=sys.stderr)
                failed.add(name)
            elif i:
                runs[name].append(run)
    for name in names:
        if runs[name] and name not in failed:
            results[name] = {
                key: statistics.median(r[key] for r in runs[name])
                for key in ("wall_s", "cpu_s", "tree_pss_mib", "main_hwm_mib")
            }
            results[name]["runs"] = [
                {k: v for k, v in r.items() if k != "stderr"} for r in runs[name]
            ]
            outputs[name] = outdir / f"{name}.npy"
    verdicts = verify(outputs)
    base = results.get("serial", {}).get("wall_s")
    lines = [
        f"Collection: {args.files} x {SIDE}x{SIDE} uint8 TIFF ({args.compression}) -> "
        f"resize {OUT_SIDE}x{OUT_SIDE} "
        f"INTER_AREA -> one ({args.files}, {OUT_SIDE}, {OUT_SIDE}) .npy; {WORKERS} processes; "
        f"median of {args.repeat} round-robin rounds after 1 warm-up round",
        "",
        "| contender | wall s | CPU s | tree peak PSS MiB | main peak RSS MiB "
        "| speed-up vs serial | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ratio = f"{base / r['wall_s']:.2f}x" if base else "-"
        lines.append(
            f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['tree_pss_mib']:.0f} "
            f"| {r['main_hwm_mib']:.0f} | {ratio} | {verdicts.get(name, '-')} |"
        )
    if "tilewise" in results and "pool_shm" in results:
        shm = results["pool_shm"]["wall_s"] / results["tilewise"]["wall_s"]
        lines += ["", f"tilewise vs shared-memory recipe: {shm:.2f}x (target >= 1.0x)"]
    table = "\n".join(lines)
    print(table)
    if args.save:
        info = {"machine": _sysinfo.machine(), "versions": _sysinfo.versions()}
        Path(f"{args.save}.md").write_text(
            table + "\n\n```\n" + json.dumps(info, indent=1) + "\n```\n"
        )
        Path(f"{args.save}.json").write_text(
            json.dumps(
                {"files": args.files, "results": results, "verify": verdicts, **info}, indent=1
            )
        )
    return 0 if all(v != "DIFFERS" for v in verdicts.values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
