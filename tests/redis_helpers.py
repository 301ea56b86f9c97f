"""A real ``redis-server`` for tests: a free loopback port, no persistence, a temp folder.

``RedisServer`` starts one (``--save '' --appendonly no``), can stop and start it again on the
same port (Redis down and back; its data is gone, as after a real restart without
persistence), and ends it. The ``redis_server`` fixture gives one per test module, flushed
before each test; tests skip, saying so, where ``redis-server`` is not installed (``.ci/run``
installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeapp.engine.stations.redis_queue.target import RedisTarget

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port nobody listens on now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on ``127.0.0.1:port``."""

    def __init__(self, *extra: str, password: str | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.extra = extra
        self.folder = Path(tempfile.mkdtemp(prefix="ea-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def target(self, **changes: object) -> RedisTarget:
        """How to reach it (``changes`` override, e.g. a wrong password)."""
        fields: dict[str, object] = {"host": "127.0.0.1", "port": self.port,
                                     "password": self.password, "tls": self.tls is not None,
                                     "ca_file": self.tls[0] if self.tls else None,
                                     "namespace": "t"}
        return RedisTarget(**{**fields, **changes})  # type: ignore[arg-type]

    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (or ``rediss://``), without the password."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers."""
        args = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.folder), "--protected-mode", "no", *self.extra]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            cert, key = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                     "--tls-auth-clients", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """End it (its data is gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def flush(self) -> None:
        """Empty every database."""
        client = self.target().connect()
        try:
            client.flushall()
        finally:
            client.close()

    def close(self) -> None:
        """Stop it and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def need_redis() -> None:
    """Skip the test, saying why, when redis-server is not installed."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (.ci/run installs it with apt-get)")


@pytest.fixture(scope="module")
def redis_module_server() -> Iterator[RedisServer]:
    """One redis-server for a test module."""
    need_redis()
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(redis_module_server: RedisServer) -> RedisServer:
    """The module's redis-server, empty."""
    if redis_module_server.process is None:
        redis_module_server.start()
    redis_module_server.flush()
    return redis_module_server


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for ``127.0.0.1`` / ``localhost`` and its key (made with openssl)."""
    cert, key = folder / "redis.crt", folder / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key
