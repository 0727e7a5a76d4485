"""The dask executor on real clusters (RELIABILITY.md rows 10-13 and 25).

Most tests start a real ``dask scheduler`` and two ``dask worker`` processes
(the venv's ``dask`` script, each in its own session, on 127.0.0.1) and kill
them at the end; the others start a LocalCluster through the executor. Every
run is compared with a local run of the same pipeline, bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from click.testing import CliRunner

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tests.executors import tasks
from tests.faults import MARKER
from tests.runner.helpers import (
    journal_lines,
    marked_image,
    session_processes,
    start_cli,
    wait_for_journal,
    wait_session_empty,
)
from tilewise.cli.app import cli
from tilewise.errors import ExecutorError, Phase, UsageError
from tilewise.executors import Done, StallRule, Supervision, Task

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]

DASK = str(Path(sys.executable).parent / "dask")
SHAPE = (1000, 1000)
TILE = 128  # 8 x 8 = 64 tiles
TILES = 64
TARGET_PIXEL = (400, 650)  # in tile 3 * 8 + 5 = 29
TARGET = 29
OPS = ["gaussian:sigma=2", "threshold:value=127"]


def slow(seconds: float) -> list[str]:
    """The reference ops, then an identity op that takes ``seconds`` per tile."""
    return [*OPS, f"tests.faults.slow:seconds={seconds}"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CliCluster:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, directory: Path, tls: list[str] | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.tls = tls or []  # --tls-ca-file CA --tls-cert CERT --tls-key KEY
        self.address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{self.port}"
        self.scheduler_file = directory / "scheduler.json"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.sessions: list[int] = []
        self._client: Any = None

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [DASK, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
            start_new_session=True,
        )
        log.close()
        self.sessions.append(proc.pid)
        return proc

    def start(self, workers: int = 2) -> CliCluster:
        self.scheduler = self._spawn(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-dashboard",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            str(self.scheduler_file),
            *(["--protocol", "tls", *self.tls] if self.tls else []),
        )
        for _ in range(workers):
            self.add_worker(wait=False)
        self.wait_for_workers(workers)
        return self

    def add_worker(self, wait: bool = True) -> subprocess.Popen[bytes]:
        number = len(self.workers)
        proc = self._spawn(
            f"worker-{number}",
            "worker",
            self.address,
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--dashboard-address",  # the worker's HTTP server (metrics) stays on loopback too
            "127.0.0.1:0",
            "--local-directory",
            str(self.directory / f"worker-{number}"),
            "--death-timeout",
            "60",
            *self.tls,
        )
        self.workers.append(proc)
        if wait:
            self.wait_for_workers(len(self.live_workers()))
        return proc

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    @property
    def client(self) -> Any:
        if self._client is None:
            security = None
            if self.tls:
                ca, cert, key = self.tls[1::2]
                security = distributed.Security(
                    tls_ca_file=ca,
                    tls_client_cert=cert,
                    tls_client_key=key,
                    require_encryption=True,
                )
            self._client = distributed.Client(
                self.address, security=security, timeout=30, set_as_default=False
            )
        return self._client

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        self.client.wait_for_workers(count, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        """The scheduler's workers now: address -> pid of the worker process."""
        assert self.client.scheduler_info(n_workers=-1)["workers"]
        return dict(self.client.run(os.getpid))

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process's whole session (the nanny, its worker and their children)."""
        for child in session_processes(proc.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> list[psutil.Process]:
        """Kill everything; return processes that outlived it (orphans)."""
        if self._client is not None:
            self._client.close(timeout=5)
            self._client = None
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            self.kill(proc)
        alive = []
        for sid in self.sessions:
            alive += wait_session_empty(sid, timeout=10)
        return alive


@pytest.fixture
def cli_cluster(tmp_path: Path) -> Iterator[Callable[..., CliCluster]]:
    """Factory: start a CLI cluster (two single-threaded workers); all are killed at the end."""
    clusters: list[CliCluster] = []

    def start(workers: int = 2, tls: list[str] | None = None) -> CliCluster:
        directory = tmp_path / f"cluster-{len(clusters)}"
        directory.mkdir()
        cluster = CliCluster(directory, tls)
        clusters.append(cluster)
        return cluster.start(workers)

    yield start
    orphans = []
    for cluster in clusters:
        orphans += cluster.stop()
    assert orphans == [], f"processes outlived their cluster: {orphans}"


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    """One CLI cluster shared by the tests that leave it as they found it."""
    cluster = CliCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start(2)
    finally:
        orphans = cluster.stop()
        assert orphans == [], f"processes outlived the cluster: {orphans}"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1000 x 1000 input whose pixels avoid the fault marker."""
    image = make_image(SHAPE, "uint8", seed=3)
    image[image == MARKER] = MARKER + 1
    return write_image(tmp_path_factory.mktemp("src") / "in.tif", image)


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same input with the marker in tile ``TARGET`` only."""
    image = make_image(SHAPE, "uint8", seed=3)
    image[image == MARKER] = MARKER + 1
    image[TARGET_PIXEL] = MARKER
    return write_image(tmp_path_factory.mktemp("marked") / "in.tif", image)


@pytest.fixture(scope="module")
def reference(
    source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], np.ndarray[Any, Any]]:
    """The local executor's output of ``OPS`` on ``source``, by output suffix."""
    cache: dict[str, np.ndarray[Any, Any]] = {}

    def get(suffix: str) -> np.ndarray[Any, Any]:
        if suffix not in cache:
            out = tmp_path_factory.mktemp("ref") / f"ref{suffix}"
            report = tilewise.run(source, out, OPS, tile=TILE, workers=2)
            assert report.ok
            cache[suffix] = read_image(out)
        return cache[suffix]

    return get


def running(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs (a zombie waiting for its reaper does not)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def after_journaled(output: Path, count: int, action: Callable[[], None]) -> threading.Event:
    """Call ``action`` from a thread once ``count`` tiles of ``output`` are journaled."""
    fired = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal_lines(output) >= count:
                action()
                fired.set()
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    return fired


# -- equivalence on a real CLI cluster ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_cli_cluster_output_is_bit_identical_to_a_local_run(
    module_cluster, source, reference, tmp_path, suffix
):
    out = tmp_path / f"out{suffix}"
    report = tilewise.run(
        source, out, OPS, tile=TILE, executor="dask", scheduler=module_cluster.address
    )
    assert report.ok and report.done == TILES
    assert report.executor["scheduler"] == module_cluster.address
    workers = {t.worker for t in report.tiles}
    assert workers <= set(module_cluster.worker_pids()), workers
    np.testing.assert_array_equal(read_image(out), reference(suffix))
    assert leftovers(tmp_path) == []


def test_cli_command_runs_on_the_cluster_and_dask_options_need_the_dask_executor(
    module_cluster, source, reference, tmp_path
):
    out = tmp_path / "out.zarr"
    args = ["run", str(source), str(out), "--tile", str(TILE), "-q"]
    ops = [item for op in OPS for item in ("--op", op)]
    result = CliRunner().invoke(
        cli, [*args, *ops, "--executor", "dask", "--scheduler", module_cluster.address]
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))

    other = tmp_path / "local.zarr"
    result = CliRunner().invoke(cli, ["run", str(source), str(other), *ops, "--scheduler", "x"])
    assert result.exit_code == 2
    assert "--scheduler only apply to --executor dask" in result.output
    assert not other.exists()


def test_nodata_geotiff_on_the_cluster_tiles_exactly_as_the_whole_image(module_cluster, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from tests.io.test_raster import write_raster
    from tests.test_equivalence import with_nodata_blocks
    from tilewise.pipeline import Pipeline

    image = with_nodata_blocks(make_image((301, 257), "uint16", 3), 0)
    src = write_raster(tmp_path / "in.tif", image, nodata=0, tiled=True, blockxsize=64,
                       blockysize=64)  # fmt: skip
    ops = ["gaussian:sigma=2", "lee:size=5,looks=2", "median:size=3"]
    whole = Pipeline.from_specs(ops).with_nodata(0, image.dtype)(image)
    for out, layout in (("o.tif", "columns"), ("o.zarr", "grid")):
        report = tilewise.run(
            src, tmp_path / out, ops, tile="37x53", layout=layout, executor="dask",
            scheduler=module_cluster.address,
        )  # fmt: skip
        assert report.ok
        np.testing.assert_array_equal(read_image(tmp_path / out), whole, err_msg=out)
    with rasterio.open(src) as i, rasterio.open(tmp_path / "o.tif") as o:
        assert (o.crs, o.transform, o.nodata) == (i.crs, i.transform, 0)


def test_a_cog_on_the_cluster_is_the_local_one_byte_for_byte(module_cluster, tmp_path, caplog):
    """The workers reduce their tiles for overview level 1 on the cluster too: they write
    them beside their encoded tiles, in the output's partial directory, as for any TIFF."""
    pytest.importorskip("rasterio")
    from tests.io.test_raster import write_raster

    image = make_image((301, 257), "uint16", 3)
    image[40:90, 50:130] = 0
    src = write_raster(tmp_path / "in.tif", image, nodata=0)
    options = {"BLOCKSIZE": 32, "OVERVIEW_RESAMPLING": "AVERAGE"}
    run: dict[str, Any] = {"tile": 96, "format": "cog", "creation_options": options}
    with caplog.at_level(logging.INFO, logger="tilewise.io._cog"):
        report = tilewise.run(
            src, tmp_path / "dask.tif", OPS[:1], executor="dask",
            scheduler=module_cluster.address, **run,
        )  # fmt: skip
    assert report.ok
    assert "overview level 1 ((151, 129), from the reduced tiles)" in caplog.text
    assert tilewise.run(src, tmp_path / "local.tif", OPS[:1], executor="serial", **run).ok
    assert (tmp_path / "dask.tif").read_bytes() == (tmp_path / "local.tif").read_bytes()


def test_an_existing_client_is_used_and_left_open(module_cluster, source, reference, tmp_path):
    client = module_cluster.client
    out = tmp_path / "out.zarr"
    report = tilewise.run(source, out, OPS, tile=TILE, executor="dask", client=client)
    assert report.ok
    assert client.status == "running"
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))


def test_scheduler_file_names_the_cluster(module_cluster, source, reference, tmp_path):
    out = tmp_path / "out.zarr"
    report = tilewise.run(
        source,
        out,
        OPS,
        tile=TILE,
        workers=7,  # ignored: the cluster has its own workers
        executor="dask",
        scheduler_file=str(module_cluster.scheduler_file),
    )
    assert report.ok and report.executor["scheduler"] == module_cluster.address
    assert report.executor["workers"] == 2
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))


def test_unreachable_scheduler_is_a_clear_error_before_any_output(source, tmp_path):
    out = tmp_path / "out.zarr"
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutorError, match="cannot connect to the Dask scheduler at"):
        tilewise.run(source, out, OPS, executor="dask", scheduler=address, connect_timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_option_conflicts_are_usage_errors(tmp_path):
    from tilewise.executors.dask import DaskExecutor

    with pytest.raises(UsageError, match="one of scheduler, scheduler_file or client"):
        DaskExecutor(scheduler="tcp://127.0.0.1:1", scheduler_file=str(tmp_path / "f"))
    with pytest.raises(UsageError, match="missing --tls-cert, --tls-key"):
        DaskExecutor(tls_ca_file=str(tmp_path / "ca.pem"))
    with pytest.raises(UsageError, match="is a TLS address"):
        DaskExecutor(scheduler="tls://127.0.0.1:1")


# -- faults inside tiles: the Dask workers never die (row 12) ---------------------------------


def test_poison_tile_is_reported_and_kills_no_dask_worker(module_cluster, marked, tmp_path):
    before = module_cluster.worker_pids()
    out = tmp_path / "out.zarr"
    ops = ["tests.faults.crash_on_marker:how=abort", *OPS]
    report = tilewise.run(
        marked, out, ops, tile=TILE, executor="dask", scheduler=module_cluster.address, retries=2
    )
    assert not report.ok and report.failed == 1 and report.done == TILES - 1
    failure = report.failures[0]
    assert failure.tile == TARGET
    assert failure.attempts == 3
    assert failure.kind == "crash"
    assert "SIGABRT" in failure.cause
    assert all("SIGABRT" in cause for cause in failure.history)
    assert module_cluster.worker_pids() == before, "a Dask worker died"


def test_a_full_disk_stops_the_run_and_no_more_tiles_are_sent(module_cluster, tmp_path):
    # the marker in tile 1 of 16, among the first tiles sent (one per worker thread, twice)
    image = marked_image((512, 512), target_pixel=(64, 192), seed=3)
    src = write_image(tmp_path / "in.tif", image, tile=(128, 128))
    out = tmp_path / "out.zarr"
    fixed = tmp_path / "fixed"
    ops = [f"tests.faults.disk_full_on_marker:fixed={fixed}"]
    run = partial(tilewise.run, src, out, ops, tile=TILE, executor="dask", retries=2)
    report = run(scheduler=module_cluster.address)
    assert not report.ok and report.failed == 1
    assert report.stopped_by is not None and "/full/disk/tile" in report.stopped_by
    [failure] = report.failures
    assert failure.tile == 1 and failure.kind == "environment" and failure.attempts == 1
    assert report.done <= 3 and report.not_run >= 12  # nothing sent after the failure
    fixed.write_text("space is back")
    again = run(scheduler=module_cluster.address, resume=True)
    assert again.ok and again.skipped == report.done
    np.testing.assert_array_equal(read_image(out), image)


def test_tile_timeout_kills_only_the_tile_process(module_cluster, marked, tmp_path):
    before = module_cluster.worker_pids()
    out = tmp_path / "out.zarr"
    ops = ["tests.faults.hang_on_marker", *OPS]
    start = time.monotonic()
    report = tilewise.run(
        marked,
        out,
        ops,
        tile=TILE,
        executor="dask",
        scheduler=module_cluster.address,
        retries=0,
        timeout=2,
    )
    assert time.monotonic() - start < 60
    assert report.failed == 1 and report.done == TILES - 1
    failure = report.failures[0]
    assert failure.tile == TARGET and failure.kind == "timeout"
    assert "timed out after 2 s" in failure.cause
    assert module_cluster.worker_pids() == before


def test_memory_limit_applies_to_the_tile_process(module_cluster, marked, tmp_path):
    before = module_cluster.worker_pids()
    out = tmp_path / "out.zarr"
    ops = ["tests.faults.hog_on_marker:gib=2", *OPS]
    report = tilewise.run(
        marked,
        out,
        ops,
        tile=TILE,
        executor="dask",
        scheduler=module_cluster.address,
        retries=0,
        memory_limit=512 * 2**20,
    )
    assert report.failed == 1 and report.done == TILES - 1
    failure = report.failures[0]
    assert failure.tile == TARGET and failure.kind == "memory"
    assert "memory limit" in failure.cause
    assert module_cluster.worker_pids() == before


# -- the cluster loses processes (rows 10, 11, 13) ---------------------------------------------


def test_sigkill_of_a_dask_worker_mid_run_loses_nothing(cli_cluster, source, reference, tmp_path):
    cluster = cli_cluster()
    out = tmp_path / "out.tif"
    victim = next(iter(cluster.worker_pids().values()))
    orphans: list[psutil.Process] = []

    def kill_worker() -> None:
        orphans.extend(psutil.Process(victim).children(recursive=True))  # its tile processes
        os.kill(victim, signal.SIGKILL)  # the worker process; its nanny starts a new one

    fired = after_journaled(out, TILES * 3 // 10, kill_worker)
    report = tilewise.run(
        source, out, slow(0.08), tile=TILE, executor="dask", scheduler=cluster.address
    )
    assert fired.is_set(), "the run ended before the worker was killed"
    assert report.ok and report.done == TILES
    assert orphans, "the killed worker had no tile processes"
    _, alive = psutil.wait_procs(orphans, timeout=10)
    assert [p for p in alive if running(p)] == [], "tile processes outlived their Dask worker"
    np.testing.assert_array_equal(read_image(out), reference(".tif"))
    assert leftovers(tmp_path) == []


def test_chaos_killing_random_workers_still_completes(cli_cluster, source, reference, tmp_path):
    cluster = cli_cluster()
    out = tmp_path / "out.zarr"
    done = threading.Event()
    kills: list[int] = []
    rng = random.Random(4)

    def chaos() -> None:
        while not done.wait(1.5) and len(kills) < 4:
            live = cluster.live_workers()
            victim = rng.choice(live)
            cluster.kill(victim)  # the whole `dask worker` session: a machine lost
            kills.append(victim.pid)
            cluster.add_worker(wait=False)

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    try:
        report = tilewise.run(
            source,
            out,
            slow(0.12),
            tile=TILE,
            executor="dask",
            scheduler=cluster.address,
            retries=5,
        )
    finally:
        done.set()
        thread.join(30)
    assert len(kills) >= 2, kills
    assert report.ok and report.done == TILES
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))


def test_scheduler_loss_is_clear_and_resume_on_a_new_cluster_runs_only_the_rest(
    cli_cluster, source, reference, tmp_path
):
    old = cli_cluster()
    out = tmp_path / "out.zarr"
    assert old.scheduler is not None
    fired = after_journaled(out, TILES * 3 // 10, lambda: old.scheduler.kill())
    with pytest.raises(ExecutorError, match=f"lost the Dask scheduler at {old.address}") as info:
        tilewise.run(source, out, slow(0.08), tile=TILE, executor="dask", scheduler=old.address)
    assert fired.is_set()
    assert "--resume" in str(info.value)
    assert info.value.phase is Phase.DURING_WORK  # the CLI says: resumable, exit 1
    journaled = journal_lines(out)
    assert 0 < journaled < TILES
    assert old.stop() == []

    new = cli_cluster()
    report = tilewise.run(
        source, out, slow(0.08), tile=TILE, executor="dask", scheduler=new.address, resume=True
    )
    assert report.ok
    assert report.skipped > 0 and report.skipped + report.done == TILES
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))
    assert leftovers(tmp_path) == []


def test_sigint_stops_the_cli_resumably_and_resume_finishes(
    cli_cluster, source, reference, tmp_path
):
    cluster = cli_cluster()
    out = tmp_path / "out.zarr"
    ops = [item for op in slow(0.08) for item in ("--op", op)]
    args = [str(source), str(out), *ops, "--tile", str(TILE), "-q"]
    proc = start_cli("run", *args, "--executor", "dask", "--scheduler", cluster.address)
    try:
        try:
            wait_for_journal(out, TILES * 3 // 10, proc)
        except AssertionError:
            pytest.fail(f"the CLI ended early: {proc.communicate(timeout=30)}")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    assert wait_session_empty(proc.pid) == []
    report = tilewise.run(
        source, out, slow(0.08), tile=TILE, executor="dask", scheduler=cluster.address, resume=True
    )
    assert report.ok and report.skipped > 0
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))


# -- a LocalCluster started by the executor (rows 25, and TLS) --------------------------------


def listening_addresses(*pids: int) -> set[str]:
    """IP addresses that processes ``pids`` listen on."""
    found = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add(conn.laddr.ip)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[Any]:
    """A LocalCluster of two single-threaded workers, through the executor; shared."""
    from tilewise.executors.dask import DaskExecutor

    executor = DaskExecutor(2)
    try:
        yield executor
    finally:
        executor.close()


def test_local_cluster_listens_on_loopback_only_and_matches_local(
    local_cluster, source, reference, tmp_path
):
    executor = local_cluster
    described = executor.describe()
    assert described["scheduler"].startswith("tcp://127.0.0.1:")
    assert described["dashboard"].startswith("http://127.0.0.1:")
    assert described["workers"] == 2
    # this process (scheduler, nannies) and the two worker processes
    workers = list(executor.client.run(os.getpid).values())
    assert len(workers) == 2
    assert listening_addresses(os.getpid(), *workers) == {"127.0.0.1"}
    out = tmp_path / "out.tif"
    report = tilewise.run(source, out, OPS, tile=TILE, executor=executor)
    assert report.ok and report.executor["cluster"] == "LocalCluster (127.0.0.1)"
    np.testing.assert_array_equal(read_image(out), reference(".tif"))


def test_a_tile_process_stopped_by_sigstop_is_given_up_as_stalled(local_cluster, tmp_path):
    """Without a timeout the stall rule reaches the tile processes on the Dask workers."""
    stall = StallRule(factor=4, floor=0.5, limit=2, min_samples=3)
    work = [Task(i, (i, str(tmp_path))) for i in range(12)]
    # 4 tasks in flight (2 x the worker threads): task 7 is sent after 4 have finished
    outcomes = {
        o.key: o
        for o in local_cluster.map_tasks(
            tasks.stop_self_once, work, supervision=Supervision(retries=1, stall=stall)
        )
    }
    assert sorted(outcomes) == list(range(12))
    assert all(isinstance(o, Done) for o in outcomes.values())
    assert outcomes[7].attempts == 2
    assert outcomes[7].history[0].startswith("stalled: ran")
    assert "the Dask worker was not affected" in outcomes[7].history[0]


def test_tls_local_cluster_with_a_temporary_security(source, reference, tmp_path):
    security = distributed.Security.temporary()
    out = tmp_path / "out.zarr"
    report = tilewise.run(
        source, out, OPS, tile=TILE, workers=2, executor="dask", security=security
    )
    assert report.ok
    assert report.executor["scheduler"].startswith("tls://127.0.0.1:")
    assert report.executor["tls"] is True
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))


def test_tls_cli_cluster_from_the_command_line(cli_cluster, source, reference, tmp_path):
    security = distributed.Security.temporary()
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.write_text(security.tls_ca_file)
    cert.write_text(security.tls_client_cert)
    key.write_text(security.tls_client_key)
    tls = ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    cluster = cli_cluster(tls=tls)
    assert cluster.address.startswith("tls://127.0.0.1:")
    out = tmp_path / "out.zarr"
    ops = [item for op in OPS for item in ("--op", op)]
    args = ["run", str(source), str(out), *ops, "--tile", str(TILE), "-q", "--executor", "dask"]
    result = CliRunner().invoke(cli, [*args, "--scheduler", cluster.address])
    assert result.exit_code == 2
    assert "is a TLS address; give --tls-ca-file, --tls-cert and --tls-key" in result.output
    result = CliRunner().invoke(cli, [*args, "--scheduler", cluster.address, *tls])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), reference(".zarr"))
