"""One million tiles through one coordinator: the main process's peak memory, and resume
after a SIGKILL of the main process.

Makes a SIDE x SIDE uint8 ``.npy`` image (default 16384², in 16² tiles: 1,048,576 tiles),
then runs ``tilewise run IN OUT --op invert --tile 16 --report R.json`` (local executor,
2 workers) as a child process, samples the **main process's** RSS every 50 ms (and its
``RssAnon``: RSS less the pages of memory-mapped files — a resume checks the ``.npy``
output's regions through a memory map, whose pages count in RSS), and

1. kills it with SIGKILL once about ``--kill-at`` of the tiles are journaled;
2. runs the same command with ``--resume`` to the end;
3. checks the output is exactly ``255 - input`` (what a clean run writes; ``--clean``
   also makes a clean run into a second file and compares the two byte for byte) and
   that the report counts every tile.

Prints wall seconds, tiles/s and peak RSS (MiB) of each phase as JSON.

    python benchmarks/million_tiles.py [--side 16384] [--tile 16] [--kill-at 0.5]
        [--workdir /tmp/tilewise-million] [--clean]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil


def tilewise_command(src: Path, out: Path, tile: int, *extra: str) -> list[str]:
    script = Path(sys.executable).with_name("tilewise")
    return [str(script), "run", str(src), str(out), "--op", "invert", "--tile", str(tile),
            "--workers", "2", "-q", *extra]  # fmt: skip


def journaled(journal: Path) -> int:
    """About how many tiles the journal lists (from its size and its first lines)."""
    try:
        with open(journal, "rb") as fh:
            header = len(fh.readline())
            lines = [len(line) for line in fh.read(64 * 1024).splitlines(keepends=True)[:-1]]
        size = journal.stat().st_size
    except FileNotFoundError:
        return 0
    return int((size - header) / (sum(lines) / len(lines))) if lines else 0


def run_sampled(command: list[str], stop_when=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Run ``command``; sample its RSS; SIGKILL it when ``stop_when()`` is true."""
    start = time.perf_counter()
    child = subprocess.Popen(command)
    proc = psutil.Process(child.pid)
    peak = anon = 0
    killed = False
    while child.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
            anon = max(anon, rss_anon(child.pid))
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            break
        if stop_when is not None and not killed and stop_when():
            os.kill(child.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    child.wait()
    return {
        "exit": child.returncode,
        "killed": killed,
        "wall_s": round(time.perf_counter() - start, 1),
        "main_peak_rss_mib": round(peak / 2**20, 1),
        "main_peak_rss_anon_mib": round(anon / 2**20, 1),
    }


def rss_anon(pid: int) -> int:
    """The process's anonymous resident memory (RSS without mapped files' pages), in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=16)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-million"))
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / "in.npy"
    out = args.workdir / "out.npy"
    report = args.workdir / "report.json"
    if not src.exists() or np.load(src, mmap_mode="r").shape != (args.side, args.side):
        rng = np.random.default_rng(0)
        image = np.lib.format.open_memmap(src, "w+", np.uint8, (args.side, args.side))
        for row in range(0, args.side, 1024):
            image[row : row + 1024] = rng.integers(0, 256, (1024, args.side), dtype=np.uint8)
        image.flush()
        del image
    tiles = math.ceil(args.side / args.tile) ** 2
    journal = out.with_name(f".{out.name}.journal")
    for leftover in (journal, out.with_name(f".{out.name}.partial"), out):
        leftover.unlink(missing_ok=True)  # a journal left by an earlier try would stop it at once
    results: dict[str, object] = {"tiles": tiles, "side": args.side, "tile": args.tile}
    first = run_sampled(
        tilewise_command(src, out, args.tile, "--overwrite"),
        lambda: journaled(journal) >= args.kill_at * tiles,
    )
    assert first["killed"], "the run ended before it could be killed: give it more tiles"
    results["killed_run"] = {**first, "journaled_tiles": len(journal.read_text().splitlines()) - 1}
    second = run_sampled(tilewise_command(src, out, args.tile, "--resume", "--report", str(report)))
    data = json.loads(report.read_text())
    results["resumed_run"] = {
        **second,
        "done": data["tiles"]["done"],
        "skipped": data["tiles"]["skipped"],
        "tiles_per_s": round(data["tiles"]["done"] / max(data["seconds"], 1e-9)),
    }
    assert second["exit"] == 0, second
    assert data["tiles"]["done"] + data["tiles"]["skipped"] == tiles
    expected = np.load(src, mmap_mode="r")
    got = np.load(out, mmap_mode="r")
    same = all(
        np.array_equal(got[row : row + 1024], 255 - expected[row : row + 1024])
        for row in range(0, args.side, 1024)
    )
    results["output_is_255_minus_input"] = same
    if args.clean:
        clean = args.workdir / "clean.npy"
        results["clean_run"] = run_sampled(tilewise_command(src, clean, args.tile, "--overwrite"))
        with open(clean, "rb") as a, open(out, "rb") as b:
            results["identical_to_clean_run"] = all(
                x == y for x, y in zip(iter(lambda: a.read(1 << 24), b""),
                                       iter(lambda: b.read(1 << 24), b""), strict=True)
            )  # fmt: skip
    print(json.dumps(results, indent=1))
    assert same


if __name__ == "__main__":
    main()
