"""Object storage for the tests: a real S3 server (moto) and a real HTTP server with ranges.

Both listen on 127.0.0.1 only, on free ports, and are started and stopped here.
S3 traffic goes through :class:`FaultProxy`, a small forwarding proxy in front
of ``moto_server`` that can answer 503 to some requests (a flaky server: the
client must retry) and 403 to one bucket (a denied bucket) — the client is real
and talks HTTP to a real server either way.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tilewise
from tests.conftest import make_image, read_image, write_image

pytest.importorskip("obstore")
pytest.importorskip("moto")

#: The bucket the proxy answers 403 for.
DENIED_BUCKET = "denied"

OPS = ("--op", "gaussian:sigma=2", "--op", "threshold:value=127")
OP_LIST = ["gaussian:sigma=2", "threshold:value=127"]


def tilewise_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, in a subprocess with this process's environment (the endpoint),
    updated with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )


def run_here(src: str | Path, dst: str | Path, **kwargs: Any) -> tilewise.RunReport:
    """A run in this process, on the serial executor unless ``executor=`` says otherwise
    (the storage code is the workers')."""
    kwargs.setdefault("executor", "serial")
    report = tilewise.run(str(src), str(dst), OP_LIST, tile=128, progress=False, **kwargs)
    assert report.ok, report.failures
    return report


@pytest.fixture(scope="package")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600 x 520 tiled, deflated TIFF (128-px tiles: 5 x 5 tilewise tiles of 128)."""
    folder = tmp_path_factory.mktemp("scene")
    return write_image(folder / "scene.tif", make_image((600, 520), seed=3))


@pytest.fixture(scope="package")
def reference(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray[Any, Any]:
    """The same run on local files."""
    out = tmp_path_factory.mktemp("ref") / "out.tif"
    run_here(scene, out)
    return read_image(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 120  # moto imports a lot; slow on a loaded machine
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered at {url}")


@dataclass
class Faults:
    """What the proxy does to requests: a 503 for every ``every``-th GET, up to ``budget``."""

    every: int = 0
    budget: int = 0
    served: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_now(self, method: str) -> bool:
        with self.lock:
            if method != "GET" or not self.every or self.failed >= self.budget:
                return False
            self.served += 1
            if self.served % self.every:
                return False
            self.failed += 1
            return True


class FaultProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to ``upstream`` (moto), except those :class:`Faults` fails.

    Listens on ``port`` (a free one if 0); :meth:`start` serves in a thread and
    :meth:`stop` stops it as a server that goes away does: the port refuses new
    connections and the open ones are cut.
    """

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.faults = Faults()
        self._clients: set[socket.socket] = set()
        super().__init__(("127.0.0.1", port), _ProxyHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        self._clients.add(client)
        return client, address

    def shutdown_request(self, request: Any) -> None:
        self._clients.discard(request)
        super().shutdown_request(request)

    def start(self) -> FaultProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        for client in list(self._clients):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self) -> None:
        body = self._body()
        if self.path.lstrip("/").split("/")[0].split("?")[0] == DENIED_BUCKET:
            self._reply(403, b"<Error><Code>AccessDenied</Code><Message>denied</Message></Error>")
            return
        if self.server.faults.fail_now(self.command):
            self._reply(503, b"<Error><Code>SlowDown</Code><Message>try later</Message></Error>")
            return
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            skip = ("connection", "transfer-encoding", "content-length")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        # a HEAD answer has no body but says the object's length
        length = answer.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@dataclass
class S3Server:
    """The running S3 server: its endpoint (the proxy), the proxy's faults, and helpers."""

    endpoint: str
    proxy: FaultProxy
    env: dict[str, str]
    buckets: set[str] = field(default_factory=set)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (once); return ``s3://name``."""
        if name not in self.buckets:
            self.client().create_bucket(Bucket=name)
            self.buckets.add(name)
        return f"s3://{name}"

    def upload(self, local: Path, url: str) -> str:
        """Put a file, or every file of a folder (Zarr), under ``url``; return ``url``."""
        client = self.client()
        bucket, _, key = url[len("s3://") :].partition("/")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            name = key if path == local else f"{key}/{path.relative_to(local).as_posix()}"
            client.put_object(Bucket=bucket, Key=name, Body=path.read_bytes())
        return url

    def download(self, url: str, local: Path) -> Path:
        """Get an object, or every object under a prefix (Zarr), into ``local``."""
        client = self.client()
        bucket, _, key = url[len("s3://") :].partition("/")
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key)
        for item in listing.get("Contents", []):
            name = item["Key"]
            target = local if name == key else local / name[len(key) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=name)["Body"].read())
        return local

    def keys(self, url: str) -> list[str]:
        """Every key under the prefix ``url``."""
        bucket, _, key = url[len("s3://") :].partition("/")
        listing = self.client().list_objects_v2(Bucket=bucket, Prefix=key)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture(scope="package")  # stopped after tests/cloud: later tests count children
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A ``moto_server`` subprocess behind a :class:`FaultProxy`, both on 127.0.0.1."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = FaultProxy(("127.0.0.1", port)).start()
    endpoint = proxy.endpoint
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "TILEWISE_STATE_DIR": str(tmp_path_factory.mktemp("state")),
        "TILEWISE_STORAGE_RETRY_SECONDS": "20",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        try:
            _wait_listening(f"http://127.0.0.1:{port}/moto-api/", proc)
            yield S3Server(endpoint, proxy, env)
        finally:
            proxy.stop()
            proc.terminate()
            proc.communicate(timeout=30)


@pytest.fixture
def faults(s3_server: S3Server) -> Iterator[Faults]:
    """The proxy's faults, reset after the test."""
    yield s3_server.proxy.faults
    s3_server.proxy.faults = Faults()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=A-B`` answered 206, and ETag/Last-Modified headers."""

    protocol_version = "HTTP/1.1"
    ranges_served = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _headers(self, path: str, status: int, start: int, stop: int, size: int) -> None:
        st = os.stat(path)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("ETag", f'"{st.st_size:x}-{st.st_mtime_ns:x}"')
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, stop, status = 0, size, 200
        spec = self.headers.get("Range")
        if spec and spec.startswith("bytes="):
            first, _, last = spec[len("bytes=") :].partition("-")
            start = int(first)
            stop = min(size, int(last) + 1) if last else size
            status = 206
            type(self).ranges_served += 1
        self._headers(path, status, start, stop, size)
        if body:
            with open(path, "rb") as fh:
                fh.seek(start)
                self.wfile.write(fh.read(stop - start))

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)


@dataclass
class HttpServer:
    """A static HTTP server over ``root``; ``url(name)`` gives a file's address."""

    root: Path
    base: str
    handler: type[_RangeHandler]

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(scope="package")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """An HTTP server honouring ``Range`` on 127.0.0.1, serving a temporary folder."""
    root = tmp_path_factory.mktemp("www")
    handler = type("Handler", (_RangeHandler,), {"ranges_served": 0})

    def make(*args: Any, **kwargs: Any) -> http.server.BaseHTTPRequestHandler:
        return handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpServer(root, f"http://127.0.0.1:{server.server_address[1]}", handler)
    finally:
        server.shutdown()
        server.server_close()
