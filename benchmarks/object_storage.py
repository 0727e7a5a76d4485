"""The reference pipeline from and to a local S3 server (moto) vs from and to local disk.

Reference data: ``make_reference.py``'s N x N image as a tiled deflate BigTIFF (made if
missing, in ``--workdir``). Pipeline: Gaussian sigma 4, threshold 127, 2 workers,
2048-px tiles (``--tile``), TIFF in, Zarr out (``--suffix .tif`` for a TIFF out).

- ``disk``: ``tilewise run ref.tif out.zarr`` on local files;
- ``s3``: ``tilewise run s3://bench/ref.tif s3://bench/out.zarr`` against a
  ``moto_server`` started here on 127.0.0.1 (``pip install 'moto[server]'``), the
  input uploaded once before the first round.

Both run in the same session, in alternating rounds (disk, s3, s3, disk, ...), each
as its own subprocess measured as a whole process tree by ``_measure`` (wall s, CPU s,
peak PSS); the medians are shown, with moto's own CPU seconds during the s3 rounds
(the server works for the client, on the same cores). Outputs are compared with
each other pixel by pixel after the last round.

Bytes fetched ÷ bytes needed: one more s3 run, untimed, goes through a counting proxy
(a forwarding HTTP server in this process) that adds up the body bytes of every GET
of the input object. Bytes needed: the compressed TIFF segments (tiles) that the
tiles' read windows (core + the pipeline's halo, clipped) touch, each counted once;
also shown, the sum over windows (a segment counted once per window that touches it).

Usage::

    python benchmarks/object_storage.py [--size 16384] [--rounds 3] [--tile 2048] [--suffix .zarr]
        [--workdir /tmp/tilewise-bench-s3] [--save PREFIX]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import http.server
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import _sysinfo
from _measure import Run, run_once
from make_reference import write_reference

PY = sys.executable
TILEWISE = str(Path(sys.executable).parent / "tilewise")
BUCKET = "bench"
OPS = ["gaussian:sigma=4", "threshold:value=127"]
DEFAULT_TILE = 2048
WORKERS = 2


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``moto_server`` on 127.0.0.1: (endpoint, process)."""
    port = _free_port()
    proc = subprocess.Popen(
        [PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start at {endpoint}") from None
                time.sleep(0.2)
        yield endpoint, proc
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to ``upstream``; counts the body bytes of GETs of ``key``."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], key: str) -> None:
        self.upstream = upstream
        self.key = key
        self.fetched = 0
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Forward)


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self) -> None:
        body = self._body()
        skip = ("connection", "transfer-encoding", "content-length")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        if self.command == "GET" and self.path.split("?")[0] == f"/{BUCKET}/{self.server.key}":
            with self.server.lock:
                self.server.fetched += len(data)
                self.server.requests += 1
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in skip:
                self.send_header(name, value)
        length = answer.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


def bytes_needed(tif: Path, size: int, tile: int) -> tuple[int, int]:
    """(each touched segment once, summed over windows) for ``tile``-px tiles and the halo."""
    import tifffile

    import tilewise.pipeline as pipeline_mod

    halo = pipeline_mod.as_pipeline(OPS).halo
    with tifffile.TiffFile(tif) as handle:
        page = handle.pages[0]
        seg_h, seg_w = page.tilelength, page.tilewidth
        counts = np.asarray(page.databytecounts, dtype=np.int64)
    across = -(-size // seg_w)
    touched: set[int] = set()
    total = 0
    for top in range(0, size, tile):
        for left in range(0, size, tile):
            rows = (max(0, top - halo), min(size, top + tile + halo))
            cols = (max(0, left - halo), min(size, left + tile + halo))
            segments = [
                r * across + c
                for r in range(rows[0] // seg_h, (rows[1] - 1) // seg_h + 1)
                for c in range(cols[0] // seg_w, (cols[1] - 1) // seg_w + 1)
            ]
            total += int(counts[segments].sum())
            touched.update(segments)
    return int(counts[sorted(touched)].sum()), total


def _argv(src: str, dst: str, tile: int) -> list[str]:
    ops = [arg for op in OPS for arg in ("--op", op)]
    return [TILEWISE, "run", src, dst, *ops, "--workers", str(WORKERS),
            "--tile", str(tile), "--overwrite", "-q"]  # fmt: skip


def _cpu(proc: subprocess.Popen[bytes]) -> float:
    import psutil

    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def _read_output(path: Path) -> np.ndarray:
    if path.suffix == ".zarr":
        import zarr

        return np.asarray(zarr.open_array(str(path), mode="r")[:])
    import tifffile

    return np.asarray(tifffile.imread(path))


def _download(client: Any, prefix: str, local: Path) -> Path:
    """Every object under ``prefix`` (or the object itself) into ``local``."""
    _remove(local)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            name = item["Key"]
            target = local if name == prefix else local / name[len(prefix) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, name, str(target))
    return local


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _median(runs: list[Run], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each route")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tilewise's tile, px")
    parser.add_argument("--suffix", choices=[".zarr", ".tif"], default=".zarr")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench-s3"))
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    parser.add_argument("--save", type=Path, default=None, help="write PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    import boto3

    args.workdir.mkdir(parents=True, exist_ok=True)
    tif = args.workdir / f"ref-{args.size}.tif"
    if not tif.exists():
        log(f"generating {tif} ...")
        write_reference(tif, args.size)
    local_out = args.workdir / f"out{args.suffix}"
    key, out_key = tif.name, f"out{args.suffix}"
    state = args.workdir / "state"
    load_start = os.getloadavg()
    with moto_server() as (endpoint, server):
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "TILEWISE_STATE_DIR": str(state),
        }
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_bucket(Bucket=BUCKET)
        log(f"uploading {tif} ({tif.stat().st_size / 2**20:.0f} MiB) ...")
        client.upload_file(str(tif), BUCKET, key)
        routes = {
            "disk": _argv(str(tif), str(local_out), args.tile),
            "s3": _argv(f"s3://{BUCKET}/{key}", f"s3://{BUCKET}/{out_key}", args.tile),
        }
        runs: dict[str, list[Run]] = {"disk": [], "s3": []}
        server_cpu: list[float] = []
        for number in range(args.rounds):
            order = ["disk", "s3"] if number % 2 == 0 else ["s3", "disk"]
            for name in order:
                if name == "disk":
                    _remove(local_out)
                before = _cpu(server)
                run = run_once(routes[name], env=env, timeout=args.timeout)
                if name == "s3":
                    server_cpu.append(_cpu(server) - before)
                log(f"round {number + 1} {name}: rc={run.returncode} wall={run.wall_s:.2f}s "
                    f"cpu={run.cpu_s:.2f}s pss={run.peak_pss_mib:.0f}MiB")  # fmt: skip
                if not run.ok:
                    log(run.stderr_tail)
                    return 1
                runs[name].append(run)
        same = bool(
            np.array_equal(
                _read_output(local_out),
                _read_output(_download(client, out_key, args.workdir / f"s3-out{args.suffix}")),
            )
        )
        proxy = CountingProxy(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), key)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            counted = run_once(
                routes["s3"],
                env={**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_address[1]}"},
                timeout=args.timeout,
            )
        finally:
            proxy.shutdown()
            proxy.server_close()
        if not counted.ok:
            log(counted.stderr_tail)
            return 1
    load_end = os.getloadavg()
    once, per_window = bytes_needed(tif, args.size, args.tile)
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "size": args.size,
        "suffix": args.suffix,
        "tile": args.tile,
        "rounds": args.rounds,
        "command": shlex.join([Path(PY).name, *sys.argv]),
        "routes": {name: shlex.join(cmd) for name, cmd in routes.items()},
        "wall_s": {name: round(_median(r, "wall_s"), 2) for name, r in runs.items()},
        "cpu_s": {name: round(_median(r, "cpu_s"), 2) for name, r in runs.items()},
        "peak_pss_mib": {name: round(_median(r, "peak_pss_mib")) for name, r in runs.items()},
        "all_wall_s": {name: [round(x.wall_s, 2) for x in r] for name, r in runs.items()},
        "moto_cpu_s": round(statistics.median(server_cpu), 2),
        "outputs_equal": same,
        "input_bytes": tif.stat().st_size,
        "fetched_bytes": proxy.fetched,
        "get_requests": proxy.requests,
        "needed_bytes": once,
        "needed_bytes_per_window": per_window,
        "fetched_over_needed": round(proxy.fetched / once, 3),
        "fetched_over_needed_per_window": round(proxy.fetched / per_window, 3),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "machine": _sysinfo.machine(),
        "versions": _sysinfo.versions(),
    }
    report = markdown(result)
    print(report)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.with_name(args.save.name + ".md").write_text(report)
        args.save.with_name(args.save.name + ".json").write_text(json.dumps(result, indent=2))
        log(f"wrote {args.save}.md and {args.save}.json")
    return 0 if same else 1


def markdown(r: dict[str, Any]) -> str:
    """The report: context, the table, bytes fetched ÷ needed."""
    mib = 2**20
    lines = [
        f"# Object storage (moto S3 on 127.0.0.1) vs local disk — {r['date']}",
        "",
        f"- Image: {r['size']} × {r['size']} uint8 reference, tiled BigTIFF 512² deflate "
        f"({r['input_bytes'] / mib:.1f} MiB); Gaussian σ=4 + threshold 127; {WORKERS} workers, "
        f"{r['tile']}-px tiles; output {r['suffix']}",
        f"- Median of {r['rounds']} alternating rounds per route; load average "
        f"{r['loadavg_start']} at start, {r['loadavg_end']} at the end",
        f"- Command: `{r['command']}`",
        "",
        "| route | wall s | CPU s (tilewise tree) | moto CPU s | peak PSS MiB | all walls |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("disk", "s3"):
        moto = f"{r['moto_cpu_s']:.2f}" if name == "s3" else "—"
        lines.append(
            f"| {name} | {r['wall_s'][name]:.2f} | {r['cpu_s'][name]:.2f} | {moto} | "
            f"{r['peak_pss_mib'][name]} | {r['all_wall_s'][name]} |"
        )
    lines += [
        "",
        f"- Outputs equal pixel for pixel: {r['outputs_equal']}",
        f"- Input bytes fetched (one counted s3 run): {r['fetched_bytes'] / mib:.2f} MiB in "
        f"{r['get_requests']} GETs; needed (segments the windows touch, once): "
        f"{r['needed_bytes'] / mib:.2f} MiB → **{r['fetched_over_needed']}**; per window: "
        f"{r['needed_bytes_per_window'] / mib:.2f} MiB → {r['fetched_over_needed_per_window']}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
