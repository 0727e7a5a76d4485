"""Measure a command as a whole process tree: wall time, CPU time and peak PSS.

A command (an argv list) runs as a subprocess.  While it runs, a sampler thread walks the
tree rooted at it (``psutil.Process.children(recursive=True)``) about ten times a second
and sums ``Pss`` from ``/proc/PID/smaps_rollup`` over every live process.  PSS divides
shared pages between the processes that map them, so forked pool workers are not
double-counted the way summed RSS would count them.

CPU seconds are taken two ways and the larger one is reported:

* ``getrusage(RUSAGE_CHILDREN)`` before/after: user+sys of the child and of every
  descendant that was waited for (pool workers, dask nannies' workers, ...);
* the sum over every process seen by the sampler of its last sampled user+sys, which
  also catches descendants nobody waited for (at the cost of missing their last
  <100 ms).

The PSS peak is a sampled maximum: a peak shorter than the sampling period can be
missed, so runs under ~1-2 s are under-measured.  Each run therefore also records the sum
of the processes' ``VmHWM`` (peak RSS) as a cross-check.

``measure()`` runs a warm-up and then ``repeat`` timed runs and reports medians.

Command line (for ad-hoc use)::

    python benchmarks/_measure.py --repeat 3 -- python -c "print(1)"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

MIB = 1024 * 1024


def compile_tilewise() -> None:
    """Compile tilewise's bytecode now, as an installed package has it.

    An editable install run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the benchmark
    machine) would otherwise compile every tilewise module from source in every process
    of every run (~0.15 s of CPU each for the main process and the fork server) — a
    cost no user of an installed tilewise pays. Python reads the compiled files even
    when told not to write them.
    """
    import compileall

    import tilewise

    compileall.compile_dir(Path(tilewise.__file__).parent, quiet=1)


def read_pss_kib(pid: int) -> int | None:
    """Return the PSS of one process in KiB, or None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None  # zombie: smaps_rollup is empty


def read_hwm_kib(pid: int) -> int | None:
    """Return the peak RSS (``VmHWM``) of one process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


class TreeSampler(threading.Thread):
    """Background thread sampling PSS and CPU times of a process tree."""

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        super().__init__(name="tree-sampler", daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peak_pss_kib = 0
        self.peak_procs = 0
        self.samples = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.hwm_by_pid: dict[int, int] = {}
        self._stop_event = threading.Event()

    def sample(self) -> None:
        """Take one sample of the whole tree."""
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        alive = 0
        for proc in procs:
            pss = read_pss_kib(proc.pid)
            if pss is None:
                continue
            total += pss
            alive += 1
            hwm = read_hwm_kib(proc.pid)
            if hwm is not None:
                self.hwm_by_pid[proc.pid] = hwm
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.cpu_by_pid[proc.pid] = times.user + times.system
        self.samples += 1
        self.peak_pss_kib = max(self.peak_pss_kib, total)
        self.peak_procs = max(self.peak_procs, alive)

    def run(self) -> None:
        """Sample until stopped."""
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop_event.set()
        self.join()

    @property
    def cpu_s(self) -> float:
        """CPU seconds (user+sys) summed over every process that was seen."""
        return sum(self.cpu_by_pid.values())

    @property
    def sum_hwm_kib(self) -> int:
        """Sum over every process seen of its peak RSS (last sampled ``VmHWM``).

        A cross-check for runs too short for the 10 Hz PSS sampling: it cannot miss a
        peak reached before the last sample, but counts shared pages once per process
        and adds peaks that need not coincide, so it overstates a forked pool.
        """
        return sum(self.hwm_by_pid.values())


@dataclass(frozen=True)
class Run:
    """One measured run of a command."""

    returncode: int
    wall_s: float
    cpu_s: float
    cpu_rusage_s: float
    cpu_sampled_s: float
    peak_pss_mib: float
    sum_hwm_mib: float
    peak_procs: int
    samples: int
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.returncode == 0


@dataclass
class Summary:
    """Median figures of several runs of one command (the warm-up excluded)."""

    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    warmup: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every run (warm-up included) succeeded."""
        return bool(self.runs) and all(r.ok for r in [*self.warmup, *self.runs])

    def _median(self, name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in self.runs))

    @property
    def wall_s(self) -> float:
        """Median wall seconds."""
        return self._median("wall_s")

    @property
    def cpu_s(self) -> float:
        """Median CPU seconds of the whole tree."""
        return self._median("cpu_s")

    @property
    def peak_pss_mib(self) -> float:
        """Median of the per-run peak PSS of the whole tree, MiB."""
        return self._median("peak_pss_mib")

    @property
    def sum_hwm_mib(self) -> float:
        """Median of the per-run sum of per-process peak RSS, MiB."""
        return self._median("sum_hwm_mib")

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly representation, medians included."""
        return {
            "argv": self.argv,
            "ok": self.ok,
            "wall_s": self.wall_s if self.runs else None,
            "cpu_s": self.cpu_s if self.runs else None,
            "peak_pss_mib": self.peak_pss_mib if self.runs else None,
            "sum_hwm_mib": self.sum_hwm_mib if self.runs else None,
            "runs": [asdict(r) for r in self.runs],
            "warmup": [asdict(r) for r in self.warmup],
        }


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _kill_tree(pid: int) -> None:
    """Kill the process we started and its descendants, by pid."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


def run_once(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    interval: float = 0.1,
    timeout: float | None = None,
    cwd: str | None = None,
) -> Run:
    """Run ``argv`` once and measure it.

    Args:
        argv: the command.
        env: environment for the command (default: inherit ours).
        interval: sampling period of the tree, seconds.
        timeout: kill the tree after this many seconds (the run then fails).
        cwd: working directory of the command.
    """
    cpu_before = _children_cpu_s()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        out, err = proc.communicate()
        returncode = -9
    wall = time.perf_counter() - t0
    sampler.stop()
    cpu_rusage = _children_cpu_s() - cpu_before
    cpu_sampled = sampler.cpu_s
    return Run(
        returncode=returncode,
        wall_s=wall,
        cpu_s=max(cpu_rusage, cpu_sampled),
        cpu_rusage_s=cpu_rusage,
        cpu_sampled_s=cpu_sampled,
        peak_pss_mib=sampler.peak_pss_kib * 1024 / MIB,
        sum_hwm_mib=sampler.sum_hwm_kib * 1024 / MIB,
        peak_procs=sampler.peak_procs,
        samples=sampler.samples,
        stdout_tail=out.decode(errors="replace")[-2000:],
        stderr_tail=err.decode(errors="replace")[-2000:],
    )


def measure(
    argv: Sequence[str],
    *,
    repeat: int = 3,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
    before_each: Callable[[], None] | None = None,
    interval: float = 0.1,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Summary:
    """Run ``argv`` ``warmup`` times untimed, then ``repeat`` times; return the medians.

    ``before_each`` runs (unmeasured) before every run, e.g. to delete the previous
    output.  Stops at the first failing run.
    """
    summary = Summary(argv=list(argv))
    for i in range(warmup + repeat):
        if before_each is not None:
            before_each()
        run = run_once(argv, env=env, interval=interval, timeout=timeout)
        is_warmup = i < warmup
        (summary.warmup if is_warmup else summary.runs).append(run)
        if log is not None:
            tag = "warm-up" if is_warmup else f"run {i - warmup + 1}/{repeat}"
            log(
                f"  {tag}: rc={run.returncode} wall={run.wall_s:.2f}s cpu={run.cpu_s:.2f}s "
                f"pss={run.peak_pss_mib:.0f}MiB (sum VmHWM {run.sum_hwm_mib:.0f}MiB) "
                f"procs={run.peak_procs} samples={run.samples}"
            )
        if not run.ok:
            break
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Measure an arbitrary command: ``_measure.py [--repeat N] -- CMD ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    summary = measure(
        cmd,
        repeat=args.repeat,
        warmup=args.warmup,
        interval=args.interval,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(json.dumps(summary.to_dict(), indent=2))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
