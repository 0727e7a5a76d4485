"""Reaching a Dask cluster: connect to a scheduler, or start a LocalCluster on 127.0.0.1.

Everything Dask is imported lazily, with an install hint when it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tilewise.errors import ExecutorError, UsageError

__all__ = ["Connection", "connect", "import_distributed", "tls_security"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tilewise[dask]'"


def import_distributed() -> Any:
    """The ``distributed`` module, or an error that says how to install it."""
    try:
        return importlib.import_module("distributed")
    except ImportError as err:
        raise ExecutorError(
            f"the dask executor needs dask.distributed, which is not installed ({err}); "
            f"install it with: {INSTALL_HINT}"
        ) from err


def tls_security(ca_file: str | None, cert: str | None, key: str | None) -> Any:
    """A ``distributed.Security`` for mutual TLS from PEM files, or None if none is given.

    The same certificate and key serve every role (client, scheduler, workers),
    as for a cluster that tilewise starts itself.
    """
    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise UsageError(
            "TLS needs --tls-ca-file, --tls-cert and --tls-key together; "
            f"missing {', '.join(missing)}"
        )
    for name, value in given.items():
        if not Path(str(value)).is_file():
            raise UsageError(f"{name} {value}: no such file")
    distributed = import_distributed()
    return distributed.Security(
        require_encryption=True,
        tls_ca_file=ca_file,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


@dataclass(slots=True)
class Connection:
    """A client, the cluster tilewise started for it (if any), and what to tell the user."""

    client: Any
    cluster: Any
    address: str
    dashboard: str | None
    owns_client: bool

    @property
    def threads(self) -> int:
        """Worker threads in the cluster now (0 if the scheduler cannot be asked)."""
        if self.client.status != "running":
            return 0
        try:
            info = self.client.scheduler_info(n_workers=0)
        except (OSError, TimeoutError):
            return 0
        return int(info.get("total_threads", 0))

    def close(self) -> None:
        """Close the client and cluster if tilewise made them. Safe to call twice."""
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        if client is not None and self.owns_client:
            try:
                client.close(timeout=10)
            except Exception as err:  # the scheduler may be gone: nothing left to close
                log.debug("closing the Dask client: %s", err)
        if cluster is not None:
            try:
                cluster.close(timeout=20)
            except Exception as err:
                log.warning("the local Dask cluster did not close cleanly: %s", err)


def connect(
    *,
    workers: int | None,
    scheduler: str | None,
    scheduler_file: str | None,
    client: Any,
    security: Any,
    connect_timeout: float,
    dashboard: bool,
) -> Connection:
    """Connect to the cluster the options name, or start a LocalCluster on 127.0.0.1."""
    distributed = import_distributed()
    if client is not None:
        if getattr(client, "asynchronous", False):
            raise UsageError("the dask executor needs a synchronous distributed.Client")
        if client.status != "running":
            raise ExecutorError(f"the given Dask client is {client.status}, not running")
        return Connection(client, None, client.scheduler.address, _dashboard(client), False)
    if scheduler is not None or scheduler_file is not None:
        where = scheduler or f"the scheduler named in {scheduler_file}"
        if scheduler is not None and scheduler.startswith("tls://") and security is None:
            raise UsageError(
                f"{scheduler} is a TLS address; give --tls-ca-file, --tls-cert and --tls-key"
            )
        if scheduler_file is not None and not Path(scheduler_file).is_file():
            raise UsageError(f"--scheduler-file {scheduler_file}: no such file")
        try:
            new = distributed.Client(
                scheduler,
                scheduler_file=scheduler_file,
                security=security,
                timeout=connect_timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError, ValueError) as err:
            raise ExecutorError(
                f"cannot connect to the Dask scheduler at {where} ({type(err).__name__}: {err}); "
                "check the address, that 'dask scheduler' runs there and is reachable from "
                "this machine, and the TLS options for a tls:// address"
            ) from err
        return Connection(new, None, new.scheduler.address, _dashboard(new), True)
    return _start_local(distributed, workers, security, dashboard)


def _dashboard(client: Any) -> str | None:
    """The scheduler's dashboard URL, or None if it runs none."""
    try:
        return str(client.dashboard_link)
    except (KeyError, AttributeError, OSError):
        return None


def _start_local(
    distributed: Any, workers: int | None, security: Any, dashboard: bool
) -> Connection:
    """A LocalCluster of single-threaded worker processes, listening on 127.0.0.1 only."""
    n_workers = workers or os.cpu_count() or 1
    try:
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://" if security is not None else "tcp://",
            security=security,
            # the scheduler's HTTP server (dashboard, health) stays on loopback too
            dashboard_address="127.0.0.1:0" if dashboard else None,
        )
    except Exception as err:
        raise ExecutorError(
            f"the local Dask cluster could not start ({type(err).__name__}: {err}); if tilewise "
            "runs from a script, put the call under 'if __name__ == \"__main__\":' (Dask "
            "workers import the main module), or see the messages above"
        ) from err
    try:
        client = distributed.Client(cluster, security=security, set_as_default=False)
    except Exception:
        cluster.close()
        raise
    link = _dashboard(client) if dashboard else None
    if link and importlib.util.find_spec("bokeh") is None:
        log.info("the Dask dashboard needs bokeh to show its pages: pip install bokeh")
    return Connection(client, cluster, cluster.scheduler_address, link, True)
