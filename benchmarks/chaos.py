"""Chaos soak: random kills of a real ``tilewise run`` and resumes, checked pixel by pixel.

Each round starts ``tilewise run`` on a fresh output (``.zarr``, ``.tif`` or ``.npy`` in
turn), waits a random time, sends one of SIGKILL / SIGTERM / SIGINT to the main process
or to its whole process group, or SIGKILL to the fork server or to a worker, lets the run
end, and resumes (``--resume``) until it exits 0. Then it checks:

- wrong pixels: the output against a clean run's (every pixel);
- lost tiles: tiles holding any wrong pixel;
- orphans: processes of the round's session still alive after it ended;
- stray files: anything but the output beside it (partial outputs, journals, locks,
  ``.assembling`` files) and ``pymp-*`` folders in the round's ``TMPDIR``.

Two extra scenarios run every ``--special-every`` rounds: a journaled Zarr chunk damaged
in place with its size kept (the resume must redo it), and the input swapped for other
pixels of the same size with its mtime restored (the resume must be refused, exit 2; with
the input put back it must finish).

Usage::

    python benchmarks/chaos.py [--rounds 50] [--seed 0] [--workdir /tmp/tilewise-chaos]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import tifffile
import zarr

SIZE = 1024
TILE = 64
OPS = ["--op", "gaussian:sigma=3", "--op", "invert"]
FORMATS = ("zarr", "tif", "npy")
KILLS = (
    "main:SIGKILL",
    "main:SIGTERM",
    "main:SIGINT",
    "group:SIGKILL",
    "group:SIGTERM",
    "group:SIGINT",
    "forkserver:SIGKILL",
    "worker:SIGKILL",
)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tilewise.cli.main", *args]


def read(path: Path) -> np.ndarray[Any, Any]:
    if path.suffix == ".zarr":
        return np.asarray(zarr.open_array(path, mode="r")[...])
    if path.suffix == ".npy":
        return np.load(path)
    return np.asarray(tifffile.imread(path))


def make_input(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = (rng.random((SIZE // 16, SIZE // 16)) * 255).astype(np.uint8)
    image = np.kron(image, np.ones((16, 16), np.uint8)) ^ rng.integers(0, 8, (SIZE, SIZE), np.uint8)
    tifffile.imwrite(path, image, tile=(128, 128), compression="deflate")


def session(sid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return alive


def wait_empty(sid: int, seconds: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    alive = session(sid)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = session(sid)
    return alive


def targets(main: psutil.Process) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The fork servers and the workers under ``main``."""
    servers, workers = [], []
    for child in main.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "forkserver" in cmd:
            servers.append(child)
        elif "resource_tracker" not in cmd:
            workers.append(child)
    return servers, workers


def kill(proc: subprocess.Popen[str], how: str, rng: random.Random) -> str:
    """Send the kill ``how``; return what was done (or why not)."""
    where, name = how.split(":")
    sig = signal.Signals[name]
    try:
        if where == "main":
            os.kill(proc.pid, sig)
        elif where == "group":
            os.killpg(proc.pid, sig)
        else:
            servers, workers = targets(psutil.Process(proc.pid))
            pool = servers if where == "forkserver" else workers
            if not pool:
                return f"{how} (none running)"
            rng.choice(pool).send_signal(sig)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return f"{how} (already gone)"
    return how


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), capture_output=True, text=True, timeout=600, env=env, start_new_session=True
    )


def strays(folder: Path, out: Path, keep: set[str], temp: Path) -> list[str]:
    found = [p.name for p in folder.iterdir() if p.name not in keep and p != out]
    return found + [p.name for p in temp.glob("pymp-*")]


def wrong(out: Path, expected: np.ndarray[Any, Any]) -> tuple[int, int]:
    """Wrong pixels and tiles holding any (every pixel wrong when the output is missing)."""
    if not out.exists():
        return expected.size, (SIZE // TILE) ** 2
    try:
        got = read(out)
    except Exception:
        return expected.size, (SIZE // TILE) ** 2
    bad = got != expected
    tiles = bad.reshape(SIZE // TILE, TILE, SIZE // TILE, TILE).any(axis=(1, 3))
    return int(bad.sum()), int(tiles.sum())


def journal_lines(out: Path) -> int:
    path = out.with_name(f".{out.name}.journal")
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except OSError:
        return 0


def chaos_round(
    number: int, work: Path, src: Path, expected: np.ndarray[Any, Any], rng: random.Random
) -> dict[str, Any]:
    fmt = FORMATS[number % len(FORMATS)]
    folder = work / f"round-{number:03d}"
    temp = folder / "tmp"
    temp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(temp)}
    out = folder / f"out.{fmt}"
    args = ["run", str(src), str(out), *OPS, "--tile", str(TILE), "--workers", "2", "-q"]
    how = rng.choice(KILLS)
    delay = rng.uniform(0.3, 3.0)
    proc = subprocess.Popen(
        cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(delay)
    done = kill(proc, how, rng)
    _, stderr = proc.communicate(timeout=600)
    codes = [proc.returncode]
    orphans = [p.pid for p in wait_empty(proc.pid)]
    invocations, resumes = 1, 0
    while codes[-1] != 0 and resumes < 3:
        again = run([*args, "--resume"], env)
        invocations, resumes = invocations + 1, resumes + 1
        codes.append(again.returncode)
        stderr = again.stderr
    pixels, tiles = wrong(out, expected)
    return {
        "round": number,
        "format": fmt,
        "kill": done,
        "delay_s": round(delay, 2),
        "exit_codes": codes,
        "invocations": invocations,
        "resumes": resumes,
        "wrong_pixels": pixels,
        "lost_tiles": tiles,
        "orphans": orphans,
        "strays": strays(folder, out, {"tmp"}, temp),
        "last_stderr": stderr.strip().splitlines()[-1:] if codes[-1] else [],
    }


def interrupted(folder: Path, src: Path, out: Path, env: dict[str, str]) -> list[str]:
    """Start a run and SIGKILL it once some tiles are journaled; return its arguments."""
    args = ["run", str(src), str(out), *OPS, "--tile", str(TILE), "--workers", "2", "-q"]
    proc = subprocess.Popen(
        cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while journal_lines(out) < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return args


def corruption_round(
    number: int, work: Path, src: Path, expected: np.ndarray[Any, Any]
) -> dict[str, Any]:
    """A journaled Zarr chunk flipped in place, same size: the resume must redo it."""
    folder = work / f"corrupt-{number:03d}"
    temp = folder / "tmp"
    temp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(temp)}
    out = folder / "out.zarr"
    args = interrupted(folder, src, out, env)
    journal = out.with_name(f".{out.name}.journal").read_text().splitlines()[1:]
    entry = json.loads(journal[0])
    name = next(n for n, s in entry["receipt"]["chunks"].items() if s)
    chunk = out.with_name(f".{out.name}.partial") / name
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    report = folder / "report.json"
    again = run([*args, "--resume", "--report", str(report)], env)
    redone = json.loads(report.read_text())["redone_damaged"] if report.exists() else None
    pixels, tiles = wrong(out, expected)
    return {
        "round": number,
        "scenario": "same-size chunk corruption",
        "damaged_tile": entry["tile"],
        "redone_damaged": redone,
        "exit_codes": [again.returncode],
        "wrong_pixels": pixels,
        "lost_tiles": tiles,
        "strays": strays(folder, out, {"tmp", "report.json"}, temp),
        "caught": bool(redone) and entry["tile"] in redone,
    }


def swap_round(number: int, work: Path, expected: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The input swapped for other pixels, same size and mtime: the resume must refuse."""
    folder = work / f"swap-{number:03d}"
    temp = folder / "tmp"
    temp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(temp)}
    src = folder / "in.tif"
    make_input(src, seed=0)
    original = src.read_bytes()
    out = folder / "out.npy"
    args = interrupted(folder, src, out, env)
    stamp = src.stat().st_mtime_ns
    other = None
    for seed in range(1, 50):  # the same compressed size, other pixels
        make_input(src, seed=seed)
        if src.stat().st_size == len(original):
            other = seed
            break
    if other is None:  # no same-size neighbour: keep the size by rewriting bytes in place
        data = bytearray(original)
        data[len(data) // 2 :] = bytes(b ^ 0x5A for b in data[len(data) // 2 :])
        src.write_bytes(bytes(data))
    os.utime(src, ns=(stamp, stamp))
    refused = run([*args, "--resume"], env)
    src.write_bytes(original)
    os.utime(src, ns=(stamp, stamp))
    finished = run([*args, "--resume"], env)
    pixels, tiles = wrong(out, expected)
    return {
        "round": number,
        "scenario": "input swapped under a resume",
        "exit_codes": [refused.returncode, finished.returncode],
        "refusal": refused.stderr.strip().splitlines()[-1:],
        "caught": refused.returncode == 2 and "input.sample" in refused.stderr,
        "wrong_pixels": pixels,
        "lost_tiles": tiles,
        "strays": strays(folder, out, {"tmp", "in.tif"}, temp),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--special-every", type=int, default=25)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-chaos"))
    parser.add_argument("--save", type=Path, default=None, help="write the rounds as JSON")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    rng = random.Random(args.seed)
    src = args.workdir / "in.tif"
    make_input(src, seed=0)
    clean = args.workdir / "clean.npy"
    subprocess.run(cli("run", str(src), str(clean), *OPS, "--tile", str(TILE), "-q"), check=True)
    expected = np.load(clean)
    started = time.monotonic()
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        rounds.append(chaos_round(number, args.workdir, src, expected, rng))
        if (number + 1) % args.special_every == 0:
            rounds.append(corruption_round(number, args.workdir, src, expected))
            rounds.append(swap_round(number, args.workdir, expected))
        r = rounds[-1]
        print(f"round {number + 1}/{args.rounds}: {r.get('kill', r.get('scenario'))} -> "
              f"exit {r['exit_codes']}, wrong {r['wrong_pixels']}", file=sys.stderr)  # fmt: skip
    kills = [r for r in rounds if "kill" in r]
    summary = {
        "rounds": len(kills),
        "invocations": sum(r["invocations"] for r in kills),
        "resumes": sum(r["resumes"] for r in kills),
        "kills": dict(Counter(r["kill"].split(" ")[0] for r in kills)),
        "first_exit_codes": dict(Counter(str(r["exit_codes"][0]) for r in kills)),
        "unfinished": sum(r["exit_codes"][-1] != 0 for r in kills),
        "wrong_pixels": sum(r["wrong_pixels"] for r in rounds),
        "lost_tiles": sum(r["lost_tiles"] for r in rounds),
        "orphans": sum(len(r.get("orphans", [])) for r in rounds),
        "stray_files": sum(len(r["strays"]) for r in rounds),
        "corruptions_caught": [r["caught"] for r in rounds if "scenario" in r],
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    if args.save:
        args.save.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=1))
    print(json.dumps(summary, indent=1))
    bad = [r for r in rounds if r["wrong_pixels"] or r["strays"] or r.get("orphans")]
    for r in bad:
        print("PROBLEM:", json.dumps(r), file=sys.stderr)
    sys.exit(1 if bad or summary["unfinished"] or not all(summary["corruptions_caught"]) else 0)


if __name__ == "__main__":
    main()
