"""A georeferenced uint16 GeoTIFF through a Gaussian to a COG: tilewise against GDAL and rioxarray.

Input (made if missing, in ``--workdir``): an N x N uint16 GeoTIFF (EPSG:32633, 10 m
pixels), smooth structure plus noise, tiled 512 px, DEFLATE, written strip by strip.
Each route writes a COG (DEFLATE, 512-px tiles, AVERAGE overviews) of the image
filtered by a Gaussian (``--sigma``, radius ``int(4 sigma + 0.5)``, mirrored border):

- ``tilewise``: ``tilewise run IN OUT --op gaussian:sigma=S --format cog
  --overview-resampling average --workers 2``;
- ``gdal_scipy``: rasterio reads the whole image, SciPy filters it in one process, GDAL's
  COG driver writes it (``peers/gdal_cog.py``, ``NUM_THREADS=2``);
- ``gdal_opencv``: the same with OpenCV's filter, the one tilewise calls per tile;
- ``rioxarray_dask``: rioxarray + dask-image, 2 threads, ``rio.to_raster(driver="COG")``
  (``peers/rioxarray_cog.py``).

Each route runs as its own subprocess, measured as a whole process tree by ``_measure``:
wall s, CPU s, peak PSS of the tree (median of ``--repeat`` runs after ``--warmup``).
Afterwards every output is checked with rio-cogeo's ``cog_validate``, and its full
resolution and each overview level are compared with tilewise's, strip by strip: the
largest difference is shown (0 where the filter is the same; SciPy rounds to uint16
differently from OpenCV's fixed point, and GDAL's AVERAGE overviews need not round as
tilewise's do).

``--size`` takes several sizes (``--size 8192,16384``): every route runs at each, one
size after the other, and a last table gives each route's tree peak PSS per size, to
show whether memory stays flat as the image grows (the input at N² is made strip by
strip, so making it does not grow with N either).

Usage::

    python benchmarks/cog.py [--size 16384[,32768...]] [--repeat 1] [--warmup 0]
        [--only a,b] [--workdir /tmp/tilewise-bench-cog] [--save PREFIX]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import _sysinfo
from _measure import Summary, measure

HERE = Path(__file__).resolve().parent
PY = sys.executable
TILEWISE = str(Path(sys.executable).parent / "tilewise")
STRIP = 1024


@dataclass(frozen=True)
class Route:
    """One way to make the COG."""

    name: str
    what: str
    needs: tuple[str, ...] = ()

    def argv(self, src: Path, dst: Path, sigma: float) -> list[str]:
        if self.name == "tilewise":
            return [TILEWISE, "run", str(src), str(dst), "--op", f"gaussian:sigma={sigma:g}",
                    "--format", "cog", "--overview-resampling", "average", "--workers", "2",
                    "--tile", "1024", "--overwrite", "-q",
                    "--report", str(dst.with_name("tilewise-report.json"))]  # fmt: skip
        if self.name == "rioxarray_dask":
            return [PY, str(HERE / "peers" / "rioxarray_cog.py"), str(src), str(dst),
                    "--sigma", f"{sigma:g}"]  # fmt: skip
        kind = self.name.removeprefix("gdal_")
        return [PY, str(HERE / "peers" / "gdal_cog.py"), str(src), str(dst),
                "--sigma", f"{sigma:g}", "--filter", kind]  # fmt: skip


ROUTES = [
    Route("tilewise", "tilewise run --format cog, 2 workers"),
    Route("gdal_scipy", "rasterio + SciPy in one process, then GDAL COG driver", ("scipy",)),
    Route("gdal_opencv", "rasterio + OpenCV in one process, then GDAL COG driver", ("cv2",)),
    Route(
        "rioxarray_dask",
        "rioxarray + dask-image (2 threads), rio.to_raster(driver=COG)",
        ("rioxarray", "dask_image"),
    ),
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_input(path: Path, size: int) -> None:
    """An N x N uint16 GeoTIFF, written strip by strip (memory flat in N)."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(16)
    tmp = path.with_name(path.name + ".tmp")
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint16",
        "crs": "EPSG:32633", "transform": from_origin(300000.0, 5000000.0, 10.0, 10.0),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "DEFLATE",
        "bigtiff": "IF_SAFER",
    }  # fmt: skip
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(tmp, "w", **profile) as ds:
        for top in range(0, size, STRIP):
            rows = np.arange(top, min(top + STRIP, size), dtype=np.float32)[:, None]
            field_ = 20000 + 12000 * np.sin(rows / 700) * np.cos(cols / 900)
            noise = rng.normal(0, 2000, (rows.shape[0], size)).astype(np.float32)
            strip = np.clip(field_ + noise, 0, 65535).astype(np.uint16)
            ds.write(strip, 1, window=((top, top + strip.shape[0]), (0, size)))
    os.replace(tmp, path)


def _levels(path: Path) -> int:
    import rasterio

    with rasterio.open(path) as ds:
        return len(ds.overviews(1))


def max_difference(a: Path, b: Path, level: int | None) -> int:
    """Largest absolute difference between two COGs at one level, read strip by strip."""
    import rasterio

    options = {} if level is None else {"OVERVIEW_LEVEL": level}
    with rasterio.open(a, **options) as x, rasterio.open(b, **options) as y:
        if x.shape != y.shape:
            return -1
        worst = 0
        for top in range(0, x.height, STRIP):
            window = ((top, min(top + STRIP, x.height)), (0, x.width))
            one = x.read(1, window=window).astype(np.int64)
            two = y.read(1, window=window).astype(np.int64)
            worst = max(worst, int(np.abs(one - two).max()))
    return worst


@dataclass
class Result:
    route: Route
    argv: list[str]
    summary: Summary | None = None
    skipped: str = ""
    valid: str = ""
    differences: list[int] = field(default_factory=list)
    size_mib: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "route": self.route.name,
            "argv": self.argv,
            "skipped": self.skipped,
            "valid": self.valid,
            "max_difference_vs_tilewise": self.differences,
            "size_mib": self.size_mib,
            "summary": self.summary.to_dict() if self.summary else None,
        }


def missing(route: Route) -> str:
    import importlib.util

    if route.name == "tilewise" and not Path(TILEWISE).exists():
        return f"no {TILEWISE}"
    absent = [name for name in route.needs if importlib.util.find_spec(name) is None]
    return f"not installed: {', '.join(absent)}" if absent else ""


def run_route(route: Route, src: Path, out: Path, args: argparse.Namespace) -> Result:
    dst = out / f"{route.name}.tif"
    result = Result(route, route.argv(src, dst, args.sigma))
    result.skipped = missing(route)
    if result.skipped:
        log(f"{route.name}: skipped ({result.skipped})")
        return result
    log(f"{route.name}: {shlex.join(result.argv)}")
    result.summary = measure(
        result.argv,
        repeat=args.repeat,
        warmup=args.warmup,
        before_each=lambda: dst.unlink(missing_ok=True),
        interval=args.interval,
        timeout=args.timeout,
        log=log,
    )
    if result.summary.ok:
        result.size_mib = round(dst.stat().st_size / 2**20, 1)
    return result


def check(results: list[Result], out: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    reference = out / "tilewise.tif"
    for r in results:
        dst = out / f"{r.route.name}.tif"
        if r.skipped or not (r.summary and r.summary.ok):
            continue
        valid, errors, warnings = cog_validate(str(dst), quiet=True)
        r.valid = "valid" if valid and not warnings else f"errors {errors} warnings {warnings}"
        if reference.exists():
            levels = [None, *range(min(_levels(dst), _levels(reference)))]
            r.differences = [max_difference(dst, reference, level) for level in levels]


def phases(out: Path) -> str:
    """tilewise's time in tiles, overviews and the one writer's assembly (from its report)."""
    path = out / "tilewise-report.json"
    if not path.exists():
        return ""
    found = json.loads(path.read_text())
    times = found.get("extra", found).get("phases", {})
    path.unlink()
    tiles, after, final = (times.get(k) for k in ("tiles_s", "after_tiles_s", "finalize_s"))
    if None in (tiles, after, final):
        return ""
    return (
        f"tilewise's last run: tiles {tiles:.2f} s (workers read, filter, encode), overviews "
        f"{after:.2f} s (workers), the one writer placing the bytes {final - after:.2f} s"
    )


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(by_size: dict[int, list[Result]], meta: dict[str, object]) -> str:
    mach, vers = meta["machine"], meta["versions"]
    assert isinstance(mach, dict)
    assert isinstance(vers, dict)
    sigma = float(str(meta["sigma"]))
    sizes = " and ".join(f"{n} × {n}" for n in by_size)
    lines = [
        f"# GeoTIFF → Gaussian → COG — {meta['date']}",
        "",
        f"- Image: {sizes} uint16 GeoTIFF (EPSG:32633), 512² tiles, DEFLATE",
        f"- Gaussian σ={meta['sigma']} (radius {int(4 * sigma + 0.5)}, "
        "mirrored border); COG: DEFLATE, 512² tiles, AVERAGE overviews",
        f"- Median of {meta['repeat']} run(s) after {meta['warmup']} warm-up; whole process tree",
        f"- Machine: nproc={mach['nproc']}, {mach['cpu_model']}, {mach['mem_total_gib']} GiB; "
        f"load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at the end",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v is not None),
        f"- Command: `{meta['command']}`",
        "",
    ]
    phases = meta.get("phases")
    assert isinstance(phases, dict)
    for size, results in by_size.items():
        lines += [*_table(size, results), ""]
        if phases.get(str(size)):
            lines += [str(phases[str(size)]), ""]
    if len(by_size) > 1:
        lines += _memory_table(by_size)
    first = next(iter(by_size.values()))
    lines += ["", "Commands (at the first size):", ""]
    lines += [f"- `{r.route.name}`: `{shlex.join(r.argv)}`" for r in first]
    return "\n".join(lines) + "\n"


def _table(size: int, results: list[Result]) -> list[str]:
    lines = [
        f"## {size} × {size} ({size * size / 1e6:.0f} MPix)",
        "",
        "| route | wall s | CPU s | tree peak PSS MiB | output MiB | rio-cogeo | "
        "max |Δ| vs tilewise (full, ovr 1, 2, …) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary
        if r.skipped or s is None:
            cells = ["—"] * 4 + [f"skipped: {r.skipped}", "—"]
        elif not s.ok:
            cells = ["—"] * 4 + ["FAILED (see JSON)", "—"]
        else:
            cells = [_fmt(s.wall_s), _fmt(s.cpu_s), _fmt(s.peak_pss_mib, 0),
                     _fmt(r.size_mib, 1), r.valid, ", ".join(map(str, r.differences))]  # fmt: skip
        lines.append("| " + " | ".join([f"{r.route.name} ({r.route.what})", *cells]) + " |")
    return lines


def _memory_table(by_size: dict[int, list[Result]]) -> list[str]:
    """Each route's tree peak PSS at each size, and the largest over the smallest."""
    sizes = list(by_size)
    head = " | ".join(f"{n}² MiB" for n in sizes)
    lines = [
        "## Tree peak PSS by image size",
        "",
        f"| route | {head} | largest / smallest size | pixels ratio |",
        "|---|" + "---|" * (len(sizes) + 2),
    ]
    pixels = (sizes[-1] / sizes[0]) ** 2
    for index, first in enumerate(by_size[sizes[0]]):
        peaks = []
        for size in sizes:
            s = by_size[size][index].summary
            peaks.append(s.peak_pss_mib if s is not None and s.ok else None)
        ratio = _fmt(peaks[-1] / peaks[0], 2) if peaks[0] and peaks[-1] is not None else "—"
        cells = [_fmt(p, 0) for p in peaks]
        lines.append(f"| {first.route.name} | {' | '.join(cells)} | {ratio} | {pixels:g} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=_sizes, default=[16384], help="N, or N,M,...: each route at each size"
    )
    parser.add_argument("--sigma", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated routes")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench-cog"))
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    parser.add_argument("--interval", type=float, default=0.1, help="PSS sampling period, s")
    parser.add_argument("--save", type=Path, default=None, help="write PREFIX.md and PREFIX.json")
    parser.add_argument("--keep-outputs", action="store_true")
    args = parser.parse_args(argv)
    only = {name for name in args.only.split(",") if name}
    unknown = only - {r.name for r in ROUTES}
    if unknown:
        parser.error(f"unknown route(s): {', '.join(sorted(unknown))}")
    routes = [r for r in ROUTES if not only or r.name in only]

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    by_size: dict[int, list[Result]] = {}
    split: dict[str, str] = {}
    for size in args.size:
        src = args.workdir / f"scene-{size}.tif"
        if not src.exists():
            log(f"writing {src}")
            make_input(src, size)
        out = args.workdir / f"out-{size}"
        out.mkdir(exist_ok=True)
        results = [run_route(route, src, out, args) for route in routes]
        check(results, out)
        split[str(size)] = phases(out)
        if not args.keep_outputs:
            for r in results:
                (out / f"{r.route.name}.tif").unlink(missing_ok=True)
        by_size[size] = results
    load_end = os.getloadavg()
    meta: dict[str, object] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "sizes": args.size,
        "sigma": args.sigma,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "command": shlex.join([Path(PY).name, *sys.argv]),
        "machine": _sysinfo.machine(),
        "versions": {**_sysinfo.versions(), **_extra_versions()},
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "phases": split,
    }
    report = markdown(by_size, meta)
    print(report)
    payload = {
        "meta": meta,
        "results": {str(n): [r.to_dict() for r in rs] for n, rs in by_size.items()},
    }
    for prefix in [args.workdir / "results", *([args.save] if args.save else [])]:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        prefix.with_name(prefix.name + ".md").write_text(report)
        prefix.with_name(prefix.name + ".json").write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {prefix}.md and {prefix}.json")
    every = [r for rs in by_size.values() for r in rs]
    return 0 if all(r.skipped or (r.summary and r.summary.ok) for r in every) else 1


def _sizes(text: str) -> list[int]:
    """``"8192,16384"`` -> ``[8192, 16384]`` (positive, ascending, distinct)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"sizes are integers, e.g. 8192,16384, not {text!r}"
        ) from err
    if not sizes or min(sizes) < 1 or sizes != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(
            f"give positive sizes in ascending order, each once, e.g. 8192,16384; got {text!r}"
        )
    return sizes


def _extra_versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("rasterio", "rioxarray", "rio-cogeo"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:
        import rasterio

        found["GDAL"] = rasterio.__gdal_version__
    except ImportError:
        found["GDAL"] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
