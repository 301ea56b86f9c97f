"""The engine's end of the Redis backend: one reader and one writer for every station.

``engine-redis-rx`` reads the ``up``, ``requests`` and ``results`` streams with the engine's
consumer group and hands each entry to its station's :class:`~.channel.RedisChannel` (held
back until that station's channel exists). At each (re)connection it first reads the
entries it was given but never acknowledged (an engine killed mid-request left them), and
every few seconds it claims entries another consumer left idle (``XAUTOCLAIM``). A request
already answered is acknowledged, not answered again: the answer, its ``answered`` marker
and the acknowledgement are written in one ``MULTI``. ``engine-redis-tx`` writes answers and
control, so no caller ever waits on Redis; while Redis is down it keeps them and retries.

Liveness: every entry's id is the Redis server's clock, so a station is judged by the server
time of its last entry, not by when the engine read it; a station silent for
``redis.silent_after_s`` is told to its channel (OFFLINE). While Redis itself is down no
station is judged, and each gets a fresh allowance once it is back.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgeapp.engine.api import EngineEvent, Notification, Severity
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.redis_queue import codec
from edgeapp.engine.stations.redis_queue.target import RedisTarget, why_down

if TYPE_CHECKING:
    import redis

    from edgeapp.engine.stations.redis_queue.channel import RedisChannel

logger = logging.getLogger(__name__)

GROUP = CONSUMER = "engine"
_COUNT = 128
_BLOCK_MS = 100
_ANSWERED_TTL_S = 86_400
_HELD_PER_STATION = 1024  # entries for a station whose channel does not exist yet
_PREVIEW_EVERY_S = 0.25
_ENGINE_TTL_S = 30

Ack = tuple[str, bytes]  # (stream, entry id)
NewStation = Callable[[str, codec.Heartbeat], None]


class RedisHub:
    """Reads and writes Redis for every station channel (see the module docstring)."""

    def __init__(self, target: RedisTarget, *, publish: Callable[[EngineEvent], None],
                 on_station: NewStation, stream_maxlen: int, silent_after_s: float,
                 claim_idle_s: float = 30.0, tidy_every_s: float = 5.0) -> None:
        self.target = target
        self.keys = target.keys()
        self._publish = publish
        self._on_station = on_station
        self._maxlen = stream_maxlen
        self._silent_ms = silent_after_s * 1000.0
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._tidy_every_s = tidy_every_s
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._channels: dict[str, RedisChannel] = {}
        self._held: dict[str, collections.deque[tuple[object, Ack | None]]] = {}
        self._last_ms: dict[str, float] = {}  # station -> server ms of its last entry
        self._announced: dict[str, float] = {}  # station -> when on_station was last called
        self._routed: set[bytes] = set()  # requests and verdicts handed on, not yet acked
        self._asked: set[str] = set()  # ids of the requests handed on, not yet answered
        self._byes: list[tuple[str, codec.Bye]] = []
        self._writes: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._down_since: float | None = None
        self._server_offset_ms = 0.0  # server clock - our clock
        self.instance = uuid.uuid4().hex[:12]
        self.frames_address: str | None = None
        self.bad_entries = 0
        self._rx = threading.Thread(target=self._read_loop, name="engine-redis-rx", daemon=True)
        self._tx = threading.Thread(target=self._write_loop, name="engine-redis-tx",
                                    daemon=True)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    def connect(self) -> None:
        """Reach the server now (``TransportError`` / ``ConfigError`` saying why not)."""
        self._client = self.target.connect()
        self.target.check(self._client)
        self._sync_clock()

    def start(self, frames_address: str) -> None:
        """Publish where stations send frames; start reading and writing."""
        self.frames_address = frames_address
        self._advertise()
        self._rx.start()
        self._tx.start()

    def stop(self) -> None:
        """End both threads (what is still to be written is written first, bounded)."""
        self._stop.set()
        self._writes.put(("stop", None))

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for both threads; True when they ended."""
        deadline = time.monotonic() + timeout
        for thread in (self._rx, self._tx):
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        ended = not (self._rx.is_alive() or self._tx.is_alive())
        if ended and self._client is not None:
            try:
                if self._owns_engine_key():  # (a newer engine may have taken it over)
                    self._client.hdel(self.keys.engine, "instance")
            except Exception:  # Redis down at the end: the key expires by itself
                pass
            self._client.close()
        return ended

    # ── channels ─────────────────────────────────────────────────────────────────────────

    def attach(self, channel: RedisChannel) -> None:
        """``channel`` now serves its station: give it what was held for it."""
        with self._lock:
            self._channels[channel.name] = channel
            held = self._held.pop(channel.name, ())
            self._last_ms.pop(channel.name, None)
        for message, ack in held:
            channel.deliver(message, ack)

    def detach(self, channel: RedisChannel, left: list[tuple[object, Ack | None]]) -> None:
        """``channel`` is closed: the entries it did not hand on (``left``) and those that
        come for its station from now on are held for its next channel."""
        with self._lock:
            if self._channels.get(channel.name) is channel:
                del self._channels[channel.name]
            self._announced.pop(channel.name, None)
            held = self._held.setdefault(channel.name, collections.deque(
                maxlen=_HELD_PER_STATION))
            held.extendleft(reversed([item for item in left if item[1] is not None]))

    def answer(self, station: str, reply: m.VlmReply, ack: Ack | None) -> None:
        """Write ``reply`` to ``station`` (once: with its marker and acknowledgement)."""
        self._writes.put(("answer", (station, reply, ack)))

    def control(self, station: str, message: object) -> None:
        """Write a control message to ``station``'s own stream."""
        self._writes.put(("control", (station, message)))

    def ack(self, ack: Ack) -> None:
        """Acknowledge an entry that has been handled."""
        self._writes.put(("ack", ack))

    # ── the reader ───────────────────────────────────────────────────────────────────────

    def _read_loop(self) -> None:
        import redis

        fresh = True  # read our own unacknowledged entries first
        first = True
        next_claim = next_preview = 0.0
        while not self._stop.is_set():
            try:
                if fresh:
                    self._groups(first)
                    first = False
                    self._read({self.keys.requests: "0", self.keys.results: "0"})
                    fresh = False
                got = self._read({self.keys.up: ">", self.keys.requests: ">",
                                  self.keys.results: ">"}, block=_BLOCK_MS)
                now = time.monotonic()
                if now >= next_claim:
                    next_claim = now + self._tidy_every_s
                    self._claim()
                    self._trim()
                    self._advertise()
                if now >= next_preview:
                    next_preview = now + _PREVIEW_EVERY_S
                    self._previews()
                self._came_back()
                self._check_processes(now)
                if not got:
                    self._judge_liveness()
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    fresh = True  # Redis lost its data (restarted): groups again, from 0
                    continue
                logger.exception("Redis refused a read")
                self._publish(Notification(Severity.ERROR, f"Redis: {exc}", "redis"))
                self._stop.wait(1.0)
            except redis.RedisError as exc:
                self._went_down(exc)
                fresh = True
                self._stop.wait(1.0)
            except Exception as exc:  # the reader must go on for the other stations
                logger.exception("Redis reader failed")
                self._publish(Notification(Severity.ERROR, f"Redis reader: {exc!r}", "redis"))
                self._stop.wait(0.5)

    def _groups(self, first: bool) -> None:
        import redis

        assert self._client is not None
        # Requests and verdicts made before the first engine ever ran are read too; the old
        # status of stations is not — but a group made again later (Redis lost its data) reads
        # the up stream from its start too: all of it came after the loss.
        for stream, start in ((self.keys.requests, "0"), (self.keys.results, "0"),
                              (self.keys.up, "$" if first else "0")):
            try:
                self._client.xgroup_create(stream, GROUP, id=start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _read(self, streams: dict[Any, Any], block: int | None = None) -> int:
        assert self._client is not None
        got: Any = self._client.xreadgroup(GROUP, CONSUMER, dict(streams), count=_COUNT,
                                           block=block)
        count, acks = 0, []
        for stream_raw, entries in got or []:
            stream = stream_raw.decode() if isinstance(stream_raw, bytes) else stream_raw
            for entry_id, fields in entries:
                count += 1
                if fields and self._entry(stream, entry_id, fields):
                    acks.append(entry_id)
                elif not fields:
                    acks.append(entry_id)  # trimmed away while pending: nothing to do
            if acks:
                self._client.xack(stream, GROUP, *acks)
                acks = []
        # A goodbye is handed on last: the verdicts a station sent before it, read in the
        # same batch from another stream, must reach its channel before the pool reaps it.
        byes, self._byes = self._byes, []
        for station, bye in byes:
            self._route(station, bye, None)
        return count

    def _claim(self) -> None:
        assert self._client is not None
        for stream in (self.keys.requests, self.keys.results):
            _next, entries, _deleted = self._client.xautoclaim(
                stream, GROUP, CONSUMER, self._claim_idle_ms, "0-0", count=_COUNT)
            for entry_id, fields in entries:
                if fields and self._entry(stream, entry_id, fields):
                    self._client.xack(stream, GROUP, entry_id)

    def _trim(self) -> None:
        """Drop what the engine has read and acknowledged (MAXLEN at XADD is only the hard
        bound, for an engine that is away)."""
        assert self._client is not None
        for stream in (self.keys.up, self.keys.requests, self.keys.results):
            pending = self._client.xpending(stream, GROUP)
            if pending["pending"]:
                keep_from = pending["min"]
            else:
                (group,) = [g for g in self._client.xinfo_groups(stream)
                            if g["name"] in (GROUP, GROUP.encode())]
                keep_from = group["last-delivered-id"]
            self._client.xtrim(stream, minid=keep_from, approximate=False)

    def _entry(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Route one entry; True when it can be acknowledged at once."""
        try:
            station, message = codec.decode(fields)
        except Exception as exc:
            self.bad_entries += 1
            logger.warning("bad Redis entry %s in %s dropped: %s", entry_id, stream, exc)
            return True
        self._seen(station, entry_id)
        if stream == self.keys.up:
            if isinstance(message, codec.Heartbeat):
                self._heartbeat(station, message, entry_id)
            elif isinstance(message, codec.Bye):
                self._byes.append((station, message))  # after the batch: see _read
            else:
                self._route(station, message, None)
            return True
        with self._lock:
            if entry_id in self._routed:
                return False  # handed on already (a claim or a re-read of our own)
        if isinstance(message, codec.Ask):
            rid = message.ask.request_id
            assert self._client is not None
            with self._lock:
                if rid in self._asked:
                    return True  # the same request twice (a station's retried XADD)
            if self._client.exists(self.keys.answered(rid)):
                return True  # answered before this engine (or its last run) died
            with self._lock:
                self._asked.add(rid)
        with self._lock:
            self._routed.add(entry_id)
        self._route(station, message, (stream, entry_id))
        return False

    def _route(self, station: str, message: object, ack: Ack | None) -> None:
        with self._lock:
            channel = self._channels.get(station)
            if channel is None:
                held = self._held.setdefault(station, collections.deque(
                    maxlen=_HELD_PER_STATION))
                held.append((message, ack))
                return
        channel.deliver(message, ack)

    def _heartbeat(self, station: str, beat: codec.Heartbeat, entry_id: bytes) -> None:
        with self._lock:
            known = station in self._channels
        if known:
            return
        age_ms = self._server_ms() - _entry_ms(entry_id)
        last = self._announced.get(station, 0.0)
        if age_ms < self._silent_ms and time.monotonic() - last > 2.0:
            self._announced[station] = time.monotonic()
            self._on_station(station, beat)

    def _seen(self, station: str, entry_id: bytes) -> None:
        with self._lock:
            ms = _entry_ms(entry_id)
            if ms > self._last_ms.get(station, 0.0):
                self._last_ms[station] = ms

    def _check_processes(self, now: float) -> None:
        with self._lock:
            channels = list(self._channels.values())
        for channel in channels:
            channel.check_process(now)

    def _judge_liveness(self) -> None:
        if self._down_since is not None:
            return
        now_ms = self._server_ms()
        with self._lock:
            channels = list(self._channels.values())
            last = dict(self._last_ms)
        for channel in channels:
            if not channel.watched:
                continue
            seen = last.get(channel.name)
            if seen is None:
                continue  # not heard from yet: it is still starting, or being waited for
            silent = now_ms - seen
            if silent > self._silent_ms:
                channel.went_silent(silent / 1000.0)

    def _previews(self) -> None:
        assert self._client is not None
        with self._lock:
            channels = list(self._channels.values())
        if not channels:
            return
        pipe = self._client.pipeline(transaction=False)
        for channel in channels:
            pipe.xrevrange(self.keys.preview(channel.name), count=1)
        for channel, got in zip(channels, pipe.execute(), strict=True):
            if got:
                channel.offer_preview(got[0][1])

    # ── the writer ───────────────────────────────────────────────────────────────────────

    def _write_loop(self) -> None:
        import redis

        retry: collections.deque[tuple[str, Any]] = collections.deque()
        while True:
            if retry:
                kind, item = retry.popleft()
            else:
                try:
                    kind, item = self._writes.get(timeout=0.5)
                except queue.Empty:
                    continue
            if kind == "stop":
                if self._writes.empty() or self._down_since is not None:
                    return
                self._writes.put((kind, item))  # after what is still queued
                continue
            try:
                self._write(kind, item)
            except redis.RedisError as exc:
                self._went_down(exc)
                retry.appendleft((kind, item))
                if self._stop.wait(1.0) and self._down_since is not None:
                    logger.error("engine stopping with Redis down: %d writes not made",
                                 len(retry) + self._writes.qsize())
                    return

    def _write(self, kind: str, item: Any) -> None:
        assert self._client is not None
        if kind == "ack":
            self._client.xack(item[0], GROUP, item[1])
            self._acked(item)
        elif kind == "control":
            station, message = item
            self._client.xadd(self.keys.down(station), codec.encode(station, message),
                              maxlen=self._maxlen, approximate=True)
        elif kind == "answer":
            station, reply, ack = item
            pipe = self._client.pipeline(transaction=True)  # MULTI … EXEC: all or none
            pipe.xadd(self.keys.down(station), codec.encode(station, reply),
                      maxlen=self._maxlen, approximate=True)
            pipe.set(self.keys.answered(reply.request_id), b"1", ex=_ANSWERED_TTL_S)
            if ack is not None:
                pipe.xack(ack[0], GROUP, ack[1])
            pipe.execute()
            with self._lock:
                self._asked.discard(reply.request_id)
            if ack is not None:
                self._acked(ack)

    def _acked(self, ack: Ack) -> None:
        with self._lock:
            self._routed.discard(ack[1])

    # ── Redis up and down; clocks ────────────────────────────────────────────────────────

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        self._publish(Notification(
            Severity.ERROR, f"Redis at {self.target.describe()} is unreachable "
                            f"({why_down(exc)}): stations keep their messages and the engine "
                            "retries every second", "redis"))

    def _came_back(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
            if since is None:
                return
            self._last_ms.clear()  # nobody could speak meanwhile: a fresh allowance for all
        self._sync_clock()
        self._publish(Notification(Severity.INFO, f"Redis at {self.target.describe()} is "
                                                  f"back after {time.monotonic() - since:.0f} s",
                                   "redis"))

    def _sync_clock(self) -> None:
        assert self._client is not None
        secs, micros = self._client.time()
        self._server_offset_ms = secs * 1000.0 + micros / 1000.0 - time.time() * 1000.0

    def _server_ms(self) -> float:
        return time.time() * 1000.0 + self._server_offset_ms

    def _advertise(self) -> None:
        assert self._client is not None
        key = self.keys.engine
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(key, mapping={"frames": self.frames_address or "", "instance": self.instance,
                                "host": socket.gethostname(), "pid": os.getpid()})
        pipe.expire(key, _ENGINE_TTL_S)
        pipe.execute()

    def _owns_engine_key(self) -> bool:
        assert self._client is not None
        return self._client.hget(self.keys.engine, "instance") == self.instance.encode()


def _entry_ms(entry_id: bytes | str) -> float:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return float(text.split("-", 1)[0])

