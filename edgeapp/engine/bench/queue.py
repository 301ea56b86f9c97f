"""``edgeapp bench queue``: a VLM request's round trip through each queue backend.

A station process (spawned, as the engine spawns stations) asks and waits for the answer,
``requests`` times, each request carrying ``frames`` frames of ``width`` x ``height`` — the
demo's order frames — and times each round trip. The engine side here does what the engine
does up to the VLM batcher, which is left out (it is the same for both backends):

- *mp* (``queue_backend: multiprocessing``): the request crosses a pipe, its frames are
  copied out of the station's shared-memory order ring, the answer goes back through an
  outbox thread and the pipe;
- *redis*: the station's real Redis link puts the request with its frames (as JPEG) into
  the requests stream, the engine's hub reads them with its consumer group, and the answer goes back
  through the station's own stream, written with its marker and acknowledgement in one
  MULTI.

Rounds alternate between the backends so that both see the same background load. Then
``redis_msgs_per_s``: status messages a station pushes through Redis to the engine, per
second. The ``*_bare_*`` figures are the same round trips without frames: the queue alone
(with frames, the Redis round trip includes encoding them as JPEG and decoding them). The
Redis server is a private ``redis-server`` on a free loopback port unless ``--redis URL``
names one.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from edgeapp.engine.stations import messages as m


def add_arguments(parser: Any) -> None:
    """The benchmark's options."""
    parser.add_argument("--requests", type=int, default=300, metavar="N",
                        help="round trips per backend (default 300)")
    parser.add_argument("--frames", type=int, default=2, metavar="K",
                        help="frames per request (default 2, the demo's top_k_frames)")
    parser.add_argument("--size", default="1280x720", metavar="WxH",
                        help="frame size (default 1280x720, the demo camera's)")
    parser.add_argument("--messages", type=int, default=5000, metavar="N",
                        help="status messages for redis_msgs_per_s (default 5000)")
    parser.add_argument("--redis", metavar="URL",
                        help="use this Redis server (default: start a private one)")


def run_queue_bench(args: Any) -> dict[str, Any]:
    """``edgeapp bench queue``."""
    from edgeapp.errors import UsageError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size: expected WxH like 1280x720, got {args.size!r}") from None
    if args.requests < 10 or args.frames < 0 or args.messages < 100:
        raise UsageError("--requests must be >= 10, --frames >= 0, --messages >= 100")
    return bench_queue(args.requests, args.frames, width, height, args.messages, args.redis)


def bench_queue(requests: int = 300, frames: int = 2, width: int = 1280, height: int = 720,
                messages: int = 5000, redis_url: str | None = None,
                rounds: int = 3) -> dict[str, Any]:
    """Round trips per backend and Redis messages per second; see the module docstring."""
    from edgeapp.engine.stations.redis_queue.target import RedisTarget

    server = None if redis_url else _PrivateRedis()
    try:
        target = RedisTarget(namespace=f"bench{time.time_ns()}")
        target = target.with_url(redis_url or server.url())  # type: ignore[union-attr]
        mp_ms: list[float] = []
        redis_ms: list[float] = []
        mp_bare: list[float] = []
        redis_bare: list[float] = []
        per_round = max(5, requests // rounds)
        for _ in range(rounds):
            mp_ms += _mp_round(per_round, frames, width, height)
            redis_ms += _redis_round(target, per_round, frames, width, height)
            mp_bare += _mp_round(per_round, 0, width, height)
            redis_bare += _redis_round(target, per_round, 0, width, height)
        rate = _redis_rate(target, messages)
    finally:
        if server is not None:
            server.close()
    return {
        "mp_p50_ms": _pct(mp_ms, 50), "mp_p99_ms": _pct(mp_ms, 99),
        "redis_p50_ms": _pct(redis_ms, 50), "redis_p99_ms": _pct(redis_ms, 99),
        "redis_added_p99_ms": round(_pct(redis_ms, 99) - _pct(mp_ms, 99), 3),
        # the same requests without frames: the queue alone
        "mp_bare_p50_ms": _pct(mp_bare, 50), "mp_bare_p99_ms": _pct(mp_bare, 99),
        "redis_bare_p50_ms": _pct(redis_bare, 50), "redis_bare_p99_ms": _pct(redis_bare, 99),
        "redis_bare_added_p99_ms": round(_pct(redis_bare, 99) - _pct(mp_bare, 99), 3),
        "redis_msgs_per_s": round(rate, 1), "requests": len(mp_ms), "frames": frames,
        "size": f"{width}x{height}", "redis": "given" if redis_url else "private loopback",
    }


def _pct(values: list[float], q: int) -> float:
    return round(float(np.percentile(values, q)), 3)


# ── the station side (a spawned process) ─────────────────────────────────────────────────


def _frames(frames: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    base = np.zeros((height, width, 3), np.uint8)  # a scene, as a camera sees one
    base[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (40, 120, 200)
    return [np.clip(base + rng.integers(0, 8, base.shape, dtype=np.uint8), 0, 255)
            for _ in range(frames)]


def _station(kind: str, line: Any, n: int, frames: int, width: int, height: int,
             report: Connection) -> None:
    """Ask ``n`` times and report every round trip in ms (a spawned process)."""
    from edgeapp.engine.stations.ring import FrameRing

    conn = line
    if kind == "redis":
        from edgeapp.engine.stations.redis_queue.station_link import RedisStationConn

        conn = RedisStationConn("bench", line, source="bench", data_dir=Path(tempfile.gettempdir()))
        conn.start()
    images = _frames(frames, width, height)
    ring = FrameRing.create("bench-o", max(1, frames), height, width) if frames else None
    if ring is not None:
        conn.send(m.RingOpened("order", ring.spec))
    times = []
    run = time.time_ns()  # request ids are unique, as a station's are: answered ones stay so
    dets = tuple(np.zeros((3, 6), np.float32) for _ in range(frames))
    for i in range(n):
        if ring is not None:
            for slot, image in enumerate(images):
                ring.write(slot, i, 0.0, image)
        t0 = time.perf_counter()
        conn.send(m.VlmAsk(f"bench-{kind}-{run}-{i}", "925", tuple(range(frames)),
                           tuple(i for _ in range(frames)), dets))
        while True:
            conn.poll(5.0)
            reply = conn.recv()
            if isinstance(reply, m.VlmReply):
                break
        times.append((time.perf_counter() - t0) * 1000.0)
    report.send(times)
    if kind == "redis":
        conn.close()
    if ring is not None:
        ring.close()
        if kind == "mp":
            ring.unlink()


def _rate_station(target: Any, n: int, report: Connection) -> None:
    """Push ``n`` status messages through Redis as fast as they go (a spawned process)."""
    from edgeapp.engine.stations.redis_queue.station_link import RedisStationConn

    conn = RedisStationConn("rate", target, source="bench", data_dir=Path(tempfile.gettempdir()))
    conn.start()
    report.send(time.time())
    for i in range(n):
        conn.send(m.OrderUpdate(bool(i % 2), str(i), None))
    conn.close()


# ── the engine side (here) ──────────────────────────────────────────────────────────────


def _spawn(target: Any, *args: Any) -> tuple[Any, Connection]:
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
    proc.start()
    theirs.close()
    return proc, mine


def _mp_round(n: int, frames: int, width: int, height: int) -> list[float]:
    """The pipe and shared memory, with an outbox thread for the answers, as PipeChannel."""
    from edgeapp.engine.stations.ring import FrameRing

    ctx = multiprocessing.get_context("spawn")
    engine_end, station_end = ctx.Pipe(duplex=True)
    proc, report = _spawn(_station, "mp", station_end, n, frames, width, height)
    station_end.close()
    outbox: queue.Queue[object] = queue.Queue(256)

    def send_loop() -> None:
        while (message := outbox.get()) is not None:
            engine_end.send(message)

    tx = threading.Thread(target=send_loop, name="bench-queue-tx", daemon=True)
    tx.start()
    ring = None
    try:
        while not report.poll(0):
            if not wait([engine_end, report], 30.0):
                raise TimeoutError("the mp station stopped answering")
            while engine_end.poll(0):
                message = engine_end.recv()
                if isinstance(message, m.RingOpened):
                    ring = FrameRing.attach(message.spec)
                elif isinstance(message, m.VlmAsk):
                    copies = [ring.read(s, q) for s, q in zip(message.slots, message.seqs,
                                                              strict=True)] if ring else []
                    assert all(c is not None for c in copies), "frames lost"
                    outbox.put(m.VlmReply(message.request_id, {"burger": 1}, None))
        return list(report.recv())
    finally:
        outbox.put(None)
        tx.join(5.0)
        proc.join(10.0)
        if ring is not None:
            ring.close()
        engine_end.close()


def _engine(target: Any) -> tuple[Any, Any, dict[str, Any]]:
    from edgeapp.engine.stations.redis_queue.frames import FrameGateway
    from edgeapp.engine.stations.redis_queue.hub import RedisHub

    folder = Path(tempfile.mkdtemp(prefix="ea-bq-"))
    gateway = FrameGateway(f"ipc://{folder}/f.sock", lambda *a: None)
    channels: dict[str, Any] = {}
    hub = RedisHub(target, publish=lambda e: None, on_station=lambda *a: None,
                   stream_maxlen=100_000, silent_after_s=60.0)
    gateway.start()
    hub.connect()
    hub.start(gateway.address)
    return hub, gateway, channels


def _channel(hub: Any, gateway: Any, name: str) -> Any:
    from edgeapp.engine.stations.redis_queue.channel import RedisChannel
    from edgeapp.engine.stations.settings import StationSettings

    settings = StationSettings(name=name, source="bench", orders_path=Path("."),
                               inventory_path=Path("."), data_dir=Path("."), ticket_class=None)
    channel = RedisChannel(settings, hub, gateway, remote=True, known_result=lambda r: False)
    hub.attach(channel)  # (start() would also send it parameters: not part of the bench)
    return channel


def _close(hub: Any, gateway: Any, channel: Any) -> None:
    channel.kill()
    channel.close()
    hub.stop()
    hub.join(10.0)
    gateway.stop()
    gateway.join(5.0)


def _redis_round(target: Any, n: int, frames: int, width: int, height: int) -> list[float]:
    """The real Redis link, hub and channel."""
    hub, gateway, _ = _engine(target)
    channel = _channel(hub, gateway, "bench")
    proc, report = _spawn(_station, "redis", target, n, frames, width, height)
    wake, _ended = channel.handles()
    try:
        while not report.poll(0):
            if not wait([wake, report], 30.0):
                raise TimeoutError("the redis station stopped answering")
            for message in channel.receive():
                if isinstance(message, m.VlmAsk):
                    copies = [channel.frame("order", s, q) for s, q in
                              zip(message.slots, message.seqs, strict=True)]
                    assert all(c is not None for c in copies), "frames lost"
                    channel.post(m.VlmReply(message.request_id, {"burger": 1}, None))
        return list(report.recv())
    finally:
        proc.join(15.0)
        _close(hub, gateway, channel)


def _redis_rate(target: Any, n: int) -> float:
    hub, gateway, _ = _engine(target)
    channel = _channel(hub, gateway, "rate")
    proc, report = _spawn(_rate_station, target, n)
    wake, _ended = channel.handles()
    got, started = 0, None
    try:
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            wait([wake], 1.0)
            got += sum(isinstance(msg, m.OrderUpdate) for msg in channel.receive())
        ended = time.time()
        started = report.recv()
    finally:
        proc.join(15.0)
        _close(hub, gateway, channel)
    if got < n:
        raise TimeoutError(f"only {got} of {n} messages came through Redis in 120 s")
    return n / max(1e-6, ended - started)


class _PrivateRedis:
    """A redis-server on a free loopback port, no persistence, for the benchmark only."""

    def __init__(self) -> None:
        import socket
        import subprocess

        from edgeapp.errors import MissingExtraError

        exe = shutil.which("redis-server")
        if exe is None:
            raise MissingExtraError("redis-server is not installed: install it (apt-get "
                                    "install redis-server) or pass --redis URL")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder = tempfile.mkdtemp(prefix="ea-bench-redis-")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.folder],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

