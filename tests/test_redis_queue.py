"""The Redis queue backend between a station's link and the engine's hub, on a real
redis-server: requests that outlive an engine, answers to the asker only, bounded streams,
Redis down and back, AUTH and TLS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_helpers import short_dir
from redis_helpers import RedisServer, need_redis, redis_module_server, redis_server, self_signed

from edgeapp.engine.api import Notification, Severity
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.redis_queue.channel import RedisChannel
from edgeapp.engine.stations.redis_queue.frames import FrameGateway
from edgeapp.engine.stations.redis_queue.hub import RedisHub
from edgeapp.engine.stations.redis_queue.station_link import LinkOptions, RedisStationConn
from edgeapp.engine.stations.redis_queue.target import RedisTarget
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.errors import ConfigError, TransportError
from edgeapp.paths import demo_inventory_path, demo_orders_path

__all__ = ["redis_module_server", "redis_server"]  # fixtures used by name

FAST = LinkOptions(heartbeat_s=0.2, buffer_messages=1000, stream_maxlen=100, preview_fps=5)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` s saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


class Engine:
    """The engine's end alone: a frame gateway, a hub, and a channel per station that speaks."""

    def __init__(self, target: RedisTarget, root: Path, silent_after_s: float = 30.0) -> None:
        self.root = root
        self.events: list[Any] = []
        self.channels: dict[str, RedisChannel] = {}
        self.gateway = FrameGateway(f"ipc://{root}/f-{time.monotonic_ns()}.sock",
                                    lambda *a: None)
        self.hub = RedisHub(target, publish=self.events.append, on_station=self._new,
                            stream_maxlen=100, silent_after_s=silent_after_s,
                            tidy_every_s=0.5)
        self.stored: list[str] = []
        self.unread: dict[str, list[Any]] = {}

    def _new(self, name: str, _beat: Any) -> None:
        settings = StationSettings(name=name, source="synthetic", orders_path=demo_orders_path(),
                                   inventory_path=demo_inventory_path(), data_dir=self.root,
                                   ticket_class=12)
        channel = RedisChannel(settings, self.hub, self.gateway, remote=True,
                               known_result=lambda rid: rid in self.stored)
        self.channels[name] = channel
        channel.start()

    def start(self) -> Engine:
        self.gateway.start()
        self.hub.connect()
        self.hub.start(self.gateway.address)
        return self

    def take(self, station: str, kind: type, timeout: float = 10.0) -> Any:
        """The next message of ``kind`` from ``station``; the others stay for a later take
        (entries of different streams read in one batch come in stream order, not in the
        order the station sent them)."""
        def found() -> Any:
            waiting = self.unread.setdefault(station, [])
            for i, msg in enumerate(waiting):
                if isinstance(msg, kind):
                    return waiting.pop(i)
            channel = self.channels.get(station)
            for msg in channel.receive() if channel else ():
                if isinstance(msg, m.ResultReady):
                    self.stored.append(msg.result["result_id"])
                if isinstance(msg, kind):
                    return msg  # (a request's frames are the channel's while it is the last)
                waiting.append(msg)
            return None
        return wait_for(found, timeout, f"a {kind.__name__} from {station}")

    def notes(self, severity: Severity) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Notification)
                and e.severity is severity]

    def crash(self) -> None:
        """End the threads as a killed engine would leave Redis: nothing acknowledged."""
        self.hub.stop()
        self.hub.join(10.0)
        self.gateway.stop()
        self.gateway.join(5.0)

    def stop(self) -> None:
        for channel in self.channels.values():
            channel.kill()
            channel.close()
        self.crash()


@contextmanager
def station(name: str, target: RedisTarget, root: Path) -> Iterator[RedisStationConn]:
    """A station's link (no camera: the test sends what a station would)."""
    conn = RedisStationConn(name, target, source="synthetic", data_dir=root, options=FAST)
    conn.start()
    try:
        yield conn
    finally:
        conn.close()


def ask(conn: RedisStationConn, request_id: str, rings: list[FrameRing]) -> np.ndarray:
    """Send a VLM request with two frames from a fresh order ring; the first frame."""
    ring = FrameRing.create("t-o", 2, 90, 160)
    rings.append(ring)
    image = np.zeros((90, 160, 3), np.uint8)
    image[20:70, 40:120] = (30, 140, 220)
    ring.write(0, 7, 1.0, image)
    ring.write(1, 8, 1.0, image[::-1].copy())
    conn.send(m.RingOpened("order", ring.spec))
    conn.send(m.VlmAsk(request_id, "925", (0, 1), (7, 8),
                       (np.zeros((0, 6), np.float32), np.ones((2, 6), np.float32))))
    return image


def replies(conn: RedisStationConn, seconds: float) -> list[m.VlmReply]:
    """Every answer the station gets within ``seconds``."""
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if conn.poll(0.1):
            msg = conn.recv()
            if isinstance(msg, m.VlmReply):
                got.append(msg)
    return got


def test_a_request_pending_when_the_engine_dies_is_answered_once_by_the_next_engine(
        redis_server: RedisServer):
    root, rings = short_dir(), []
    target = redis_server.target()
    engine = Engine(target, root).start()
    try:
        with station("a", target, root) as conn:
            # Given a request the engine took (its frames reach it) but never answered
            image = ask(conn, "a-1", rings)
            asked = engine.take("a", m.VlmAsk)
            seen = engine.channels["a"].frame("order", 0, 7)
            assert seen is not None and np.abs(seen.image.astype(int) - image).mean() < 3, \
                "the request's frames reach the engine (as JPEG, close to the originals)"
            assert asked.detections[1].shape == (2, 6)
            engine.crash()  # When the engine dies with it pending
            # Then the next engine is given it again, answers it, and the station gets one
            # answer; a third engine finds nothing left to answer
            engine = Engine(target, root).start()
            again = engine.take("a", m.VlmAsk)
            assert again.request_id == "a-1"
            engine.channels["a"].post(m.VlmReply("a-1", {"burger": 1}, None))
            assert [r.request_id for r in replies(conn, 2.0)] == ["a-1"]
            engine.crash()
            engine = Engine(target, root).start()
            conn.send(m.ResultReady({"result_id": "a-r1"}))
            engine.take("a", m.ResultReady)  # the station is served, so its backlog came
            heard = engine.unread.get("a", []) + [msg for ch in engine.channels.values()
                                                  for msg in ch.receive()]
            assert not [msg for msg in heard if isinstance(msg, m.VlmAsk)], \
                "an answered request is not asked again"
            # And a request sent twice (a retried XADD) is answered once
            client = target.connect()
            entry = client.xrange(target.keys().requests)[-1][1]
            ask(conn, "a-2", rings)
            client.xadd(target.keys().requests, entry)  # the a-1 entry once more
            second = engine.take("a", m.VlmAsk)
            assert second.request_id == "a-2"
            engine.channels["a"].post(m.VlmReply("a-2", {}, None))
            assert [r.request_id for r in replies(conn, 1.5)] == ["a-2"]
            client.close()
    finally:
        engine.stop()
        for ring in rings:
            ring.close()
            ring.unlink()


def test_answers_reach_only_the_station_that_asked_and_streams_stay_bounded(
        redis_server: RedisServer):
    root, rings = short_dir(), []
    target = redis_server.target()
    engine = Engine(target, root).start()
    try:
        with station("a", target, root) as a, station("b", target, root) as b:
            ask(a, "a-1", rings)
            engine.take("a", m.VlmAsk)
            wait_for(lambda: "b" in engine.channels, 10, "station b to be heard")
            engine.channels["a"].post(m.VlmReply("a-1", {"cola": 2}, None))
            assert [r.items for r in replies(a, 1.5)] == [{"cola": 2}]
            assert replies(b, 0.5) == [], "b gets no answer to a's request"
            # Streams stay bounded: what the engine has read and acknowledged is trimmed,
            # and MAXLEN ~ holds them while the engine is away
            for i in range(90):
                a.send(m.StationNotice("info", f"n{i}"))
            texts: list[str] = []
            wait_for(lambda: texts.extend(x.text for x in engine.channels["a"].receive()
                                          if isinstance(x, m.StationNotice))
                     or "n89" in texts, 15, "the last notice")
            assert texts == [f"n{i}" for i in range(90)], "every notice came, in order"
            client = target.connect()
            keys = target.keys()
            wait_for(lambda: client.xlen(keys.up) < 10, 5, "the read entries to be trimmed")
            engine.crash()
            for i in range(1000):
                a.send(m.StationNotice("info", f"away{i}"))
            wait_for(lambda: client.xlen(keys.up) >= 100, 10, "the notices to be written")
            time.sleep(0.5)
            assert client.xlen(keys.up) < 300, "MAXLEN ~ bounds the stream"
            client.close()
    finally:
        engine.stop()
        for ring in rings:
            ring.close()
            ring.unlink()


def test_redis_down_the_station_keeps_its_verdicts_and_the_engine_says_so():
    need_redis()
    root = short_dir()
    server = RedisServer().start()
    target = server.target()
    engine = Engine(target, root).start()
    try:
        with station("a", target, root) as conn:
            wait_for(lambda: "a" in engine.channels, 10, "station a to be heard")
            # Given Redis goes down
            server.stop()
            wait_for(lambda: engine.notes(Severity.ERROR), 15, "a notification that Redis "
                                                                "is down")
            (down,) = engine.notes(Severity.ERROR)
            assert "unreachable" in down and str(server.port) in down
            # When the station reports a verdict meanwhile, and Redis comes back (empty)
            conn.send(m.ResultReady({"result_id": "a-r1", "order_id": "925"}))
            time.sleep(1.0)
            server.start()
            # Then the verdict arrives, the engine says Redis is back, and the station
            # tells how long it was cut off
            result = engine.take("a", m.ResultReady, timeout=20)
            assert result.result["result_id"] == "a-r1"
            wait_for(lambda: engine.notes(Severity.INFO), 10, "Redis is back")
            notice = engine.take("a", m.StationNotice, timeout=10)
            assert "could not reach Redis" in notice.text
    finally:
        engine.stop()
        server.close()


def test_auth_a_wrong_password_is_one_clear_line_that_never_shows_it_and_tls_works(
        tmp_path: Path):
    need_redis()
    secret = "s3cret-pw"
    server = RedisServer(password=secret, tls=self_signed(tmp_path)).start()
    try:
        with pytest.raises(ConfigError) as wrong:
            server.target(password="nope").check(server.target(password="nope").connect())
        assert "refused the login" in str(wrong.value) and "nope" not in str(wrong.value)
        with pytest.raises(ConfigError) as missing:
            server.target(password=None).check(server.target(password=None).connect())
        assert "needs a password" in str(missing.value)
        good = server.target()
        assert secret not in repr(good) and secret not in good.describe()
        assert good.describe().startswith("rediss://127.0.0.1:")
        client = good.connect()
        good.check(client)  # TLS with the CA that signed the server's certificate
        client.close()
        plain = server.target(tls=False)
        with pytest.raises(TransportError) as no_tls:
            plain.check(plain.connect())
        assert "cannot reach Redis" in str(no_tls.value)
    finally:
        server.close()


def test_a_url_sets_server_database_and_tls_and_its_password_is_redacted():
    base = RedisTarget(password="from-config")
    t = base.with_url("rediss://10.0.0.5:6380/2")
    assert (t.host, t.port, t.db, t.tls, t.password) == ("10.0.0.5", 6380, 2, True,
                                                         "from-config")
    assert base.with_url("redis://u:pw@h/0").password == "pw"
    with pytest.raises(ConfigError) as bad:
        base.with_url("http://u:pw@h:1/0")
    assert "pw" not in str(bad.value) and "redis://HOST:6379/0" in str(bad.value)



def test_a_station_the_engine_does_not_know_is_added_as_remote_and_its_own_are_not(
        redis_server: RedisServer):
    from edgeapp.config import config_from_dict
    from edgeapp.engine.stations.redis_queue.backend import RedisBackend

    root = short_dir()
    config = config_from_dict({
        "queue_backend": "redis", "data_dir": str(root), "stations": [{"name": "a"}],
        "distributed": {"stations_bind": f"ipc://{root}/s.sock"},
        "redis": {"host": "127.0.0.1", "port": redis_server.port, "namespace": "t"}})
    added: list[Any] = []
    events: list[Any] = []
    backend = RedisBackend(config, publish=events.append, add_station=added.append,
                           known_result=lambda rid: False)
    backend.start(lambda *a: None, None)
    try:
        with station("a", backend.target, root), station("b", backend.target, root):
            wait_for(lambda: added, 10, "station b to be added")
            time.sleep(1.0)  # (a's heartbeats came too)
            assert [(s.name, s.remote, s.source) for s in added] == [("b", True, "synthetic")]
            assert any(isinstance(e, Notification) and "station b joined" in e.text
                       for e in events)
            channel = backend.channel(StationSettings(
                name="b", source="synthetic", orders_path=demo_orders_path(),
                inventory_path=demo_inventory_path(), data_dir=root, ticket_class=12))
            assert channel.remote, "b's channel waits for it: it is remote"
            channel.close()
    finally:
        backend.stop()
        backend.join(10.0)
