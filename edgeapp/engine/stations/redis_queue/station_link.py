"""The station's end of the Redis backend, in the shape of a pipe end: ``send`` / ``poll`` /
``recv`` / ``close`` — so :class:`~edgeapp.engine.stations.station.Station` runs unchanged.

What the station sends is turned into stream entries: verdicts into the results stream, VLM
requests (the order-ring frames as JPEG) into the requests stream, the rest into the shared
``up`` stream; live frames go over ZeroMQ to the engine (:mod:`.frames`), with a JPEG preview
now and then for the tile. Answers and control come from the station's own ``down`` stream;
detections from the frame line. Threads: ``station-redis-tx`` (the outbox, heartbeats, the
engine's address), ``station-redis-rx`` (the down stream) and ``station-frames``.

Redis down: the outbox keeps what must not be lost within ``redis.buffer_messages``, the
station retries every second or two and says so in its log, then tells the engine how long
it was cut off; what is still unsent when the station ends is spooled to
``<data_dir>/spool/`` and sent by its next start.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.redis_queue import codec
from edgeapp.engine.stations.redis_queue.frames import FrameLink
from edgeapp.engine.stations.redis_queue.outbox import Entry, Outbox
from edgeapp.engine.stations.redis_queue.target import RedisTarget, why_down
from edgeapp.engine.stations.ring import FrameRing

logger = logging.getLogger(__name__)

GROUP = "station"
_PREVIEW_KEEP = 2
# The engine trims the requests it answered, and a station has at most settings.order_slots
# waiting, so this hard bound (64 stations' worth) matters only while the engine is away.
REQUESTS_MAXLEN = 256
_INBOX = 512
_FLUSH_S = 5.0  # at the end, how long the outbox may take to empty before it is spooled
_ADDRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class LinkOptions:
    """How a station uses Redis (from the config's ``redis`` section)."""

    heartbeat_s: float = 1.0
    buffer_messages: int = 10_000
    stream_maxlen: int = 10_000
    preview_fps: float = 4.0

    @classmethod
    def from_config(cls, cfg: Any) -> LinkOptions:
        """The options of a ``RedisConfig``."""
        return cls(cfg.heartbeat_s, cfg.buffer_messages, cfg.stream_maxlen, cfg.preview_fps)


class RedisStationConn:
    """A station's line to the engine through Redis (see the module docstring)."""

    def __init__(self, name: str, target: RedisTarget, *, source: str, data_dir: Path,
                 options: LinkOptions | None = None, keys: object | None = None,
                 parent_pid: int | None = None, frames_address: str | None = None) -> None:
        self.name = name
        self._target = target
        self._keys = target.keys()
        self._opt = options or LinkOptions()
        self._client = target.connect()
        self._parent_pid = parent_pid
        self._frames_address = frames_address  # None: the one the engine publishes
        self._hello = codec.Heartbeat(source, socket.gethostname(), os.getpid(), time.time())
        self._outbox = Outbox(self._opt.buffer_messages)
        self._spool = data_dir / "spool" / f"station-{name}.msgpack"
        self._inbox: queue.Queue[object] = queue.Queue(_INBOX)
        self._peeked: object | None = None
        self._rings: dict[str, FrameRing] = {}
        self._rings_lock = threading.Lock()
        self._said: dict[type, object] = {}  # the last camera / order message, for a resync
        self._next_preview = 0.0
        self._frames = FrameLink(name, self._detections, keys=keys)
        self._stop = threading.Event()
        self._closed = False
        self._ready = False
        self._down_since: float | None = None
        self._down_lock = threading.Lock()
        self.detections_dropped = 0
        self._tx = threading.Thread(target=self._send_loop, name="station-redis-tx", daemon=True)
        self._rx = threading.Thread(target=self._read_loop, name="station-redis-rx", daemon=True)

    def start(self) -> None:
        """Start the threads (what an earlier process spooled goes first)."""
        spooled = self._outbox.unspool(self._spool)
        if spooled:
            logger.warning("station %s: sending %d messages an earlier run kept", self.name,
                           spooled)
        # Our stream is set up before anything is said: what the engine answers to our
        # first words must not be skipped as "an earlier process's".
        self._ready = self._guard(lambda: self._make_group(self._keys.down(self.name), True))
        self._frames.start()
        self._tx.start()
        self._rx.start()

    # ── the pipe-end interface the Station uses ──────────────────────────────────────────

    def send(self, message: object) -> None:
        """One message to the engine (any thread); never blocks on Redis."""
        if self._closed:
            return
        if isinstance(message, m.RingOpened):
            self._attach(message)
        elif isinstance(message, m.FrameReady):
            self._frame(message)
        elif isinstance(message, m.VlmAsk):
            frames = self._order_frames(message)
            self._put(self._keys.requests, codec.Ask(message, frames), True, REQUESTS_MAXLEN)
        elif isinstance(message, m.ResultReady):
            self._put(self._keys.results, message, True)
        elif isinstance(message, m.StationStats):
            self._put(self._keys.up, message, False)
        else:
            if isinstance(message, (m.SourceStateChanged, m.OrderUpdate)):
                self._said[type(message)] = message
            self._put(self._keys.up, message, True)

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether a message waits (waiting up to ``timeout`` s); ``EOFError`` once the
        engine that started this station is gone."""
        if self._peeked is not None:
            return True
        try:
            self._peeked = self._inbox.get(timeout=timeout)
            return True
        except queue.Empty:
            if self._parent_pid is not None and os.getppid() != self._parent_pid:
                raise EOFError("the engine that started this station is gone") from None
            return False

    def recv(self) -> object:
        """The next message from the engine (blocks until one comes)."""
        if self._peeked is None:
            self._peeked = self._inbox.get()
        message, self._peeked = self._peeked, None
        return message

    def close(self, code: int = 0, reason: str = "stopped") -> None:
        """Say goodbye, send what waits (spool what cannot be sent), end the threads."""
        if self._closed:
            return
        self._closed = True
        self._put(self._keys.up, codec.Bye(code, reason), True, force=True)
        if not self._outbox.wait_empty(_FLUSH_S):
            kept = self._outbox.spool(self._spool, skip=self._keys.requests)
            logger.error("station %s: Redis unreachable at the end; %d messages kept in %s "
                         "for the next start", self.name, kept, self._spool)
        self._stop.set()
        self._outbox.wake()
        self._frames.stop()
        self._tx.join(10.0)
        self._rx.join(10.0)
        self._frames.join(5.0)
        with self._rings_lock:
            for ring in self._rings.values():
                ring.close()
                ring.unlink()
            self._rings.clear()
        self._client.close()

    # ── station → engine ─────────────────────────────────────────────────────────────────

    def _put(self, stream: str, message: object, keep: bool, maxlen: int | None = None,
             force: bool = False) -> None:
        if self._closed and not force:
            return
        fields = codec.encode(self.name, message)
        self._outbox.put(Entry(stream, fields, maxlen or self._opt.stream_maxlen, keep))

    def _attach(self, opened: m.RingOpened) -> None:
        ring = FrameRing.attach(opened.spec)
        with self._rings_lock:
            old, self._rings[opened.kind] = self._rings.get(opened.kind), ring
        if old is not None:
            old.close()
            old.unlink()

    def _frame(self, ready: m.FrameReady) -> None:
        with self._rings_lock:
            ring = self._rings.get("live")
            frame = ring.read(ready.slot, ready.seq) if ring is not None else None
        if frame is None:
            return
        self._frames.send_frame(ready.seq, ready.capture_ts, frame.image)
        now = time.monotonic()
        if now >= self._next_preview:
            self._next_preview = now + 1.0 / self._opt.preview_fps
            fields = codec.encode(self.name, codec.Preview(ready.seq, ready.capture_ts,
                                                           frame.image))
            self._outbox.put(Entry(self._keys.preview(self.name), fields, _PREVIEW_KEEP,
                                   False))

    def _order_frames(self, ask: m.VlmAsk) -> tuple[Any, ...]:
        with self._rings_lock:
            ring = self._rings.get("order")
            frames = [ring.read(slot, seq) if ring is not None else None
                      for slot, seq in zip(ask.slots, ask.seqs, strict=True)]
        # The station frees these slots only once answered: they cannot be gone.
        return tuple(f.image for f in frames if f is not None)

    def _send_loop(self) -> None:
        next_beat = next_address = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat and self._down_since is None:
                next_beat = now + self._opt.heartbeat_s
                self._put(self._keys.up, self._hello, False)
            if now >= next_address:
                next_address = now + _ADDRESS_EVERY_S
                self._guard(self._follow_engine)
            batch = self._outbox.take(64, timeout=min(0.25, self._opt.heartbeat_s))
            if batch and not self._guard(lambda b=batch: self._xadd(b)):
                self._outbox.put_front(batch)

    def _xadd(self, batch: list[Entry]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for e in batch:
            pipe.xadd(e.stream, e.fields, maxlen=e.maxlen, approximate=e.maxlen >= 100)
        pipe.execute()

    def _follow_engine(self) -> None:
        if self._frames_address is not None:
            self._frames.connect(self._frames_address)
            return
        address: Any = self._client.hget(self._keys.engine, "frames")
        self._frames.connect(address.decode() if address else None)

    # ── engine → station ─────────────────────────────────────────────────────────────────

    def _read_loop(self) -> None:
        import redis

        down = self._keys.down(self.name)
        ready = self._ready
        first = not ready
        while not self._stop.is_set():
            if not ready:
                ready = self._guard(lambda f=first: self._make_group(down, f))
                first = first and not ready
                continue
            try:
                got: Any = self._client.xreadgroup(GROUP, self.name, {down: ">"}, count=64,
                                                   block=500)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ready = False  # Redis lost its data (restarted): make the group again
                continue
            except redis.RedisError as exc:
                self._went_down(exc)
                self._stop.wait(1.0)
                continue
            self._came_back()
            ids = []
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    ids.append(entry_id)
                    self._take(fields)
            if ids:
                self._guard(lambda i=ids: self._client.xack(down, GROUP, *i))

    def _make_group(self, down: str, first: bool) -> None:
        import redis

        try:
            self._client.xgroup_create(down, GROUP, id="$" if first else "0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            if first:  # what an earlier process of this name was told is not for us
                self._client.xgroup_setid(down, GROUP, id="$")

    def _take(self, fields: dict[bytes, bytes]) -> None:
        try:
            _station, message = codec.decode(fields)
        except Exception as exc:  # a bad entry is dropped, never the station
            logger.warning("station %s: bad message from the engine dropped: %s", self.name,
                           exc)
            return
        if isinstance(message, codec.Resync):
            for said in list(self._said.values()):
                self._put(self._keys.up, said, True)
            return
        self._inbox.put(message)

    def _detections(self, detections: m.Detections) -> None:
        try:
            self._inbox.put_nowait(detections)
        except queue.Full:
            self.detections_dropped += 1

    # ── Redis up and down ────────────────────────────────────────────────────────────────

    def _guard(self, call: Any) -> bool:
        """Run ``call``; on a Redis error note the outage, wait a little, return False."""
        import redis

        try:
            call()
        except redis.RedisError as exc:
            self._went_down(exc)
            self._stop.wait(1.0)
            return False
        self._came_back()
        return True

    def _went_down(self, exc: BaseException) -> None:
        with self._down_lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.error("station %s: Redis at %s unreachable (%s): keeping messages (up to %d) "
                     "and retrying", self.name, self._target.describe(), why_down(exc),
                     self._outbox.limit)

    def _came_back(self) -> None:
        with self._down_lock:
            since, self._down_since = self._down_since, None
        if since is None:
            return
        gone = time.monotonic() - since
        dropped, lost = self._outbox.dropped, self._outbox.lost
        text = (f"station {self.name} could not reach Redis for {gone:.0f} s; it kept its "
                f"messages ({len(self._outbox)} waiting, {dropped} heartbeats/metrics dropped"
                + (f", {lost} lost beyond redis.buffer_messages" if lost else "") + ")")
        logger.warning("%s", text)
        self._put(self._keys.up, m.StationNotice("warning" if not lost else "error", text,
                                                 self.name), True)
