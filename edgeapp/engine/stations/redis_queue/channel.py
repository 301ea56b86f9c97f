"""One station as the pool sees it, through Redis: the ``StationChannel`` of the Redis backend.

A local station (``queue_backend: redis``, the engine starts it) is a spawned process like
with pipes; a remote one (``edgeapp --station NAME`` on another machine) is only waited for:
``start()`` sends it the stream parameters in force and asks it to tell its camera and order
again, ``stop`` / ``terminate`` ask it to end, and it ends when it says goodbye or goes
silent (``went_silent``; the pool makes it OFFLINE). The hub's reader thread feeds
``deliver``; the pool thread drains ``receive``; a verdict or a VLM request is acknowledged
only once the engine has handled it, so a crash in between loses nothing.
"""

from __future__ import annotations

import collections
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.redis_queue import codec
from edgeapp.engine.stations.redis_queue.hub import Ack, RedisHub
from edgeapp.engine.stations.ring import SlotFrame
from edgeapp.engine.stations.settings import StationSettings

if TYPE_CHECKING:
    from edgeapp.engine.stations.redis_queue.frames import FrameGateway

_BYE_GRACE_S = 1.5  # a local process that ended: how long its last entries may take to come


class RedisChannel:
    """A station through Redis (see the module docstring)."""

    def __init__(self, settings: StationSettings, hub: RedisHub, gateway: FrameGateway, *,
                 remote: bool, known_result: Callable[[str], bool],
                 process_args: tuple[Any, ...] = ()) -> None:
        self.name = settings.name
        self.settings = settings
        self.remote = remote
        self.watched = remote  # judged by its heartbeats (a local one: by its process)
        self._hub = hub
        self._gateway = gateway
        self._known_result = known_result
        self._lock = threading.Lock()
        self._inbox: collections.deque[tuple[object, Ack | None]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._end_r, self._end_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w, self._end_r, self._end_w):
            s.setblocking(False)
        self._ended = threading.Event()
        self._code: int | None = None
        self.end_reason: str | None = None
        self._over_at: float | None = None
        self._asks: dict[str, Ack | None] = {}  # request id -> its entry, until answered
        self._order_frames: dict[tuple[int, int], SlotFrame] = {}
        self._preview_fields: dict[bytes, bytes] | None = None
        self._preview: SlotFrame | None = None
        self.dropped = 0
        self._process: Any = None
        if not remote:
            from edgeapp.engine.stations.redis_queue.runner import station_process_main

            ctx = multiprocessing.get_context("spawn")
            self._process = ctx.Process(target=station_process_main,
                                        args=(settings, *process_args),
                                        name=f"station-{self.name}", daemon=True)

    # ── the StationChannel protocol (pool thread, clients) ───────────────────────────────

    @property
    def pid(self) -> int | None:
        """The local process id while it runs (None: remote)."""
        p = self._process
        return p.pid if p is not None and p.exitcode is None else None

    @property
    def exitcode(self) -> int | None:
        """How it ended: the local process's code, or the code the remote one said."""
        if self._process is not None and self._process.exitcode is not None:
            return int(self._process.exitcode)
        return self._code

    def start(self) -> None:
        """Local: spawn it. Remote: give it the parameters and ask for its state."""
        self._hub.attach(self)
        if self._process is not None:
            self._process.start()
            return
        self._hub.control(self.name, m.SetParameters(self.settings.fps_level,
                                                     self.settings.scale))
        self._hub.control(self.name, codec.Resync())

    def handles(self) -> tuple[object, object]:
        """(a message waits, the station ended)."""
        return self._wake_r, self._end_r

    def receive(self) -> Iterator[object]:
        """What waits; a verdict or request is acknowledged after the pool handled it."""
        _drain(self._wake_r)
        while True:
            with self._lock:
                if not self._inbox:
                    return
                message, ack = self._inbox.popleft()
            if isinstance(message, codec.Ask):
                self._asks[message.ask.request_id] = ack
                self._order_frames = {(slot, seq): SlotFrame(seq, 0.0, image) for slot, seq, image
                                      in zip(message.ask.slots, message.ask.seqs,
                                             message.frames, strict=True)}
                yield message.ask
                self._order_frames = {}
            elif isinstance(message, m.ResultReady):
                if not self._known_result(str(message.result.get("result_id", ""))):
                    yield message
                if ack is not None:
                    self._hub.ack(ack)
            else:
                yield message

    def post(self, message: object, droppable: bool = False) -> bool:
        """Detections over ZeroMQ; an answer once, with its request's acknowledgement; the
        rest into the station's stream."""
        if isinstance(message, m.Detections):
            self._gateway.send_detections(self.name, message)
        elif isinstance(message, m.VlmReply):
            self._hub.answer(self.name, message, self._asks.pop(message.request_id, None))
        else:
            self._hub.control(self.name, message)
        return True

    def set_parameters(self, message: m.SetParameters) -> None:
        """Into the station's stream (Redis keeps the order; nothing waits)."""
        self._hub.control(self.name, message)

    def frame(self, ring: str, slot: int, seq: int | None = None) -> SlotFrame | None:
        """An order frame of the request being handed on (live frames never pass here)."""
        if seq is None:
            return None
        return self._order_frames.get((slot, seq))

    def newest(self, prefer_seq: int | None) -> SlotFrame | None:
        """The newest preview the station sent (a JPEG, decoded once)."""
        with self._lock:
            fields, cached = self._preview_fields, self._preview
        if fields is None:
            return None
        if cached is None:
            try:
                _station, preview = codec.decode(fields)
            except Exception:
                return None
            assert isinstance(preview, codec.Preview)
            cached = SlotFrame(preview.seq, preview.capture_ts, preview.image)
            with self._lock:
                if self._preview_fields is fields:
                    self._preview = cached
        return cached

    def newest_seq(self, prefer_seq: int | None) -> int | None:
        """The seq of the newest preview (without decoding it)."""
        frame = self._preview
        if frame is not None:
            return frame.seq
        return None if self._preview_fields is None else -1

    def stop(self, finish_order: bool, deadline_s: float, reason: str) -> None:
        """Ask it to end (first finishing the order on its counter, if asked)."""
        self._hub.control(self.name, m.Stop(finish_order, deadline_s, reason))

    def terminate(self) -> None:
        """Local: SIGTERM. Remote: ask it to end now."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
        else:
            self.stop(False, 0.0, "station stopped")

    def kill(self) -> None:
        """Local: SIGKILL. Remote: nothing reaches it any more; let it go."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
        else:
            self._end("did not answer the request to stop; let go")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for its end; True when it ended."""
        return self._ended.wait(timeout)

    def close(self) -> None:
        """After its end: hand back what was not taken; close the handles."""
        with self._lock:
            left = list(self._inbox)
            self._inbox.clear()
        left += [(None, ack) for ack in self._asks.values() if ack is not None]
        self._hub.detach(self, [(msg, ack) for msg, ack in left
                                if ack is not None and msg is not None])
        for s in (self._wake_r, self._wake_w, self._end_r, self._end_w):
            s.close()
        if self._process is not None:
            self._process.join(1.0)
            if self._process.exitcode is not None:
                self._process.close()

    # ── from the hub's reader thread ─────────────────────────────────────────────────────

    def deliver(self, message: object, ack: Ack | None) -> None:
        """An entry for this station."""
        if isinstance(message, codec.Bye):
            self._code = message.code
            self._over_at = time.monotonic()
            if self._process is None:
                self._end(f"left ({message.reason})" if message.code == 0 else
                          f"ended on its machine with code {message.code} ({message.reason})")
            return
        if isinstance(message, codec.Preview):
            return
        with self._lock:
            self._inbox.append((message, ack))
        _poke(self._wake_w)

    def offer_preview(self, fields: dict[bytes, bytes]) -> None:
        """The newest preview entry (decoded only when a tile asks)."""
        with self._lock:
            if fields != self._preview_fields:
                self._preview_fields, self._preview = fields, None

    def went_silent(self, seconds: float) -> None:
        """No entry from it for ``seconds``: it is gone (the pool makes it OFFLINE)."""
        self._end(f"silent for {seconds:.0f} s (no heartbeat)")

    def check_process(self, now: float) -> None:
        """A local process that ended is over once its goodbye came (or a grace passed)."""
        p = self._process
        if p is None or self._ended.is_set() or p.exitcode is None:
            return
        if self._over_at is None:  # no goodbye yet: what it sent last may still be on its way
            self._over_at = now + _BYE_GRACE_S
        if now >= self._over_at:
            self._end(f"process ended with code {p.exitcode}")

    def _end(self, reason: str) -> None:
        if self._ended.is_set():
            return
        self.end_reason = reason
        self._ended.set()
        _poke(self._end_w)


def _poke(sock: socket.socket) -> None:
    try:
        sock.send(b"!")
    except OSError:
        pass  # full (already awake) or closed


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
