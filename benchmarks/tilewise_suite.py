"""tilewise against its own targets (PERFORMANCE.md): scaling, flat memory, tile-size overhead.

Each case runs the real ``tilewise`` CLI as a subprocess, measured as a whole process
tree (wall, CPU, peak PSS summed over main + workers), median of ``--repeat`` runs
after a warm-up.

    python benchmarks/tilewise_suite.py scaling   # median:size=9, 1 vs 2 workers; the kernel alone
    python benchmarks/tilewise_suite.py memory    # reference pipeline at 8192², 16384², 32768²
    python benchmarks/tilewise_suite.py tiles     # tile size / layout sweep on 16384²
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Summary, measure
from _sysinfo import machine
from make_reference import write_reference

TILEWISE = str(Path(sys.executable).parent / "tilewise")
REFERENCE_OPS = ["--op", "gaussian:sigma=4", "--op", "threshold:value=127"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reference(workdir: Path, size: int) -> Path:
    path = workdir / f"ref-{size}.tif"
    if not path.exists():
        log(f"generating {path} ...")
        write_reference(path, size)
    return path


def remover(path: Path) -> Callable[[], None]:
    def remove() -> None:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    return remove


def tilewise_run(src: Path, out: Path, ops: list[str], *extra: str, repeat: int) -> Summary:
    argv = [TILEWISE, "run", str(src), str(out), *ops, "--overwrite", "-q", *extra]
    log(" ".join(argv))
    return measure(argv, repeat=repeat, before_each=remover(out), log=log)


def row(label: str, summary: Summary, **extra: object) -> dict[str, object]:
    return {
        "case": label,
        "wall_s": round(summary.wall_s, 3),
        "cpu_s": round(summary.cpu_s, 3),
        "peak_pss_mib": round(summary.peak_pss_mib, 1),
        **extra,
    }


def scaling(workdir: Path, size: int, repeat: int) -> list[dict[str, object]]:
    src = reference(workdir, size)
    ops = ["--op", "median:size=9"]
    rows = []
    for workers in (1, 2):
        summary = tilewise_run(src, workdir / "scaling.zarr", ops, "--workers", str(workers),
                               "--tile", "1024", repeat=repeat)  # fmt: skip
        rows.append(row(f"median:size=9, {size}², {workers} worker(s)", summary))
    rows[1]["speedup"] = round(float(rows[0]["wall_s"]) / float(rows[1]["wall_s"]), 2)
    # the same kernel on as many tiles, in memory, without tilewise: the machine's own bound
    kernel = str(Path(__file__).resolve().parent / "kernel_scaling.py")
    across = -(-size // 1024)
    count = str(across * across)
    for processes in (1, 2):
        argv = [sys.executable, kernel, "--processes", str(processes), "--tiles", count]
        log(" ".join(argv))
        summary = measure(argv, repeat=repeat, log=log)
        rows.append(row(f"cv2.medianBlur(9) alone, {count} tiles of 1032², {processes} process(es)",
                        summary))  # fmt: skip
    rows[3]["speedup"] = round(float(rows[2]["wall_s"]) / float(rows[3]["wall_s"]), 2)
    return rows


def memory(workdir: Path, sizes: list[int], repeat: int, tile: str) -> list[dict[str, object]]:
    rows = []
    for size in sizes:
        src = reference(workdir, size)
        summary = tilewise_run(src, workdir / "memory.tif", REFERENCE_OPS, "--workers", "2",
                               "--tile", tile, repeat=repeat)  # fmt: skip
        rows.append(row(f"reference pipeline, {size}², TIFF → TIFF, tile {tile}", summary))
    return rows


def tiles(workdir: Path, size: int, repeat: int) -> list[dict[str, object]]:
    src = reference(workdir, size)
    rows = []
    for tile, layout in (("256", "grid"), ("512", "grid"), ("1024", "grid"), ("2048", "grid"),
                         ("1024", "rows"), ("2048", "rows")):  # fmt: skip
        for out in ("tiles.tif", "tiles.zarr"):
            summary = tilewise_run(src, workdir / out, REFERENCE_OPS, "--workers", "2", "--tile",
                                   tile, "--layout", layout, repeat=repeat)  # fmt: skip
            route = "TIFF → TIFF" if out.endswith("tif") else "TIFF → Zarr"
            rows.append(row(f"{route}, {layout} {tile}", summary))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=["scaling", "memory", "tiles"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench"))
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384, 32768])
    parser.add_argument("--tile", default="2048", help="tile size for the memory case")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.case == "scaling":
        rows = scaling(args.workdir, args.size, args.repeat)
    elif args.case == "memory":
        rows = memory(args.workdir, args.sizes, args.repeat, args.tile)
    else:
        rows = tiles(args.workdir, args.size, args.repeat)
    print(json.dumps({"system": machine(), "rows": rows}, indent=1))
    print("\n| case | wall s | CPU s | tree peak PSS MiB | note |\n|---|---|---|---|---|")
    for r in rows:
        note = f"speed-up {r['speedup']}x" if "speedup" in r else ""
        print(f"| {r['case']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_pss_mib']} | {note} |")


if __name__ == "__main__":
    main()
