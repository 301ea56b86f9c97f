"""The Collector: a PULL socket that takes results from workers, dedupes and reorders them.

One thread owns the socket. Each message is validated like the Producer validates requests
(size and part bounds, msgpack limits, dtype allow-list, ``prod(shape) * itemsize ==
len(data)``, detections ``(N, 6)`` float32); a bad one is counted per reason and dropped.
Good results are acked to the Producer (their leases end) and go through a per-stream
:class:`StreamReorder`; subscribers get :class:`DetectionResult` in frame order per stream, on
the Collector thread. The thread sleeps until a message comes, the Producer cancels a frame,
or the oldest held-back result reaches its reorder deadline — never a busy wait.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.endpoint import ServerEndpoint
from edgeapp.engine.distributed.link import AckListener
from edgeapp.engine.distributed.reorder import StreamReorder
from edgeapp.engine.distributed.settings import CollectorSettings
from edgeapp.engine.distributed.wakeup import Waker
from edgeapp.errors import ProtocolError

logger = logging.getLogger(__name__)

REJECT_TOO_MANY_STREAMS = "too_many_streams"


@dataclass(frozen=True)
class DetectionResult:
    """Detections of one frame: ``(N, 6)`` float32 ``x1, y1, x2, y2, score, class`` (read-only).

    ``meta`` holds what the worker sent back: ``id``, ``capture_ts``, ``grade`` (the grade it
    was processed at), ``worker``, ``timings`` and any extra task fields, plus ``recv_ts``.
    """

    stream_key: str
    seq: int
    detections: np.ndarray
    meta: dict[str, Any]


Subscriber = Callable[[DetectionResult], None]


class Collector:
    """Receives results over PULL and hands them on in order per stream; ``start/stop/join``."""

    def __init__(self, settings: CollectorSettings | None = None, **overrides: Any) -> None:
        self.settings = dataclasses.replace(settings or CollectorSettings(), **overrides)
        self.address: str | None = None
        self._lock = threading.Lock()
        self._streams: dict[str, StreamReorder] = {}
        self._subscribers: list[Subscriber] = []
        self._ack_listeners: list[AckListener] = []
        self._rejects = p.RejectCounter()
        self._counts: Counter[str] = Counter()
        self._waker = Waker()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._endpoint: ServerEndpoint | None = None
        self.error: BaseException | None = None

    # --- public API (any thread) --------------------------------------------------------------

    def start(self) -> None:
        """Bind (SecurityError/TransportError raise here) and start the socket thread."""
        s = self.settings
        self._endpoint = ServerEndpoint(zmq.PULL, s.address, max_message_bytes=s.max_result_bytes,
                                        keys_dir=s.keys_dir, insecure=s.insecure)
        self.address = self._endpoint.address
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop: what is held back is released (missing frames skipped), then the socket closes."""
        self._stopping = True
        self._waker.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the socket thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(result)`` for every result, in order per stream; returns unsubscribe."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def add_ack_listener(self, listener: AckListener) -> None:
        """Call ``listener(task_ids)`` when results arrive (the Producer ends their leases)."""
        self._ack_listeners = [*self._ack_listeners, listener]

    def remove_ack_listener(self, listener: AckListener) -> None:
        """Stop calling ``listener`` (a stopped Producer)."""
        self._ack_listeners = [x for x in self._ack_listeners if x != listener]

    def expect(self, stream_key: str, seq: int) -> None:
        """Frame ``seq`` of ``stream_key`` is on its way (called by the Producer)."""
        with self._lock:
            stream = self._stream(stream_key)
            if stream is not None:
                stream.expect(seq)

    def cancel(self, stream_key: str, seq: int) -> None:
        """Frame ``seq`` of ``stream_key`` will not come: do not wait for it."""
        with self._lock:
            stream = self._streams.get(stream_key)
            if stream is not None:
                stream.cancel(seq)
        self._waker.wake()

    def forget(self, stream_key: str) -> None:
        """Drop all state of a stream that ended (frees its slot)."""
        with self._lock:
            self._streams.pop(stream_key, None)

    def status(self) -> dict[str, Any]:
        """Counters: received, rejected per reason, and per stream released/duplicate/late/
        skipped plus frames expected and results held back."""
        with self._lock:
            streams = {k: {**s.counts, "expected": s.pending()[0], "held": s.pending()[1]}
                       for k, s in self._streams.items()}
        return {"address": self.address, **self._counts, "rejected": self._rejects.snapshot(),
                "streams": streams}

    # --- socket thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported through .error and the log
            self.error = exc
            logger.exception("collector thread failed")
        finally:
            with self._lock:
                released = [(k, s.flush()) for k, s in self._streams.items()]
            self._deliver(released)
            if self._endpoint is not None:
                self._endpoint.close()
            self._waker.close()

    def _loop(self) -> None:
        assert self._endpoint is not None and self._endpoint.socket is not None
        sock = self._endpoint.socket
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._waker.fileno(), zmq.POLLIN)
        while not self._stopping:
            with self._lock:
                deadlines = [d for s in self._streams.values()
                             if (d := s.next_deadline()) is not None]
            wait = min(deadlines, default=time.monotonic() + 1.0) - time.monotonic()
            events = dict(poller.poll(max(0, int(wait * 1000) + 1)))
            if self._waker.fileno() in events:
                self._waker.drain()
            if sock in events:
                for _ in range(256):  # bounded burst, then release what is due
                    try:
                        parts = p.recv_bounded(sock, self.settings.limits.max_parts)
                    except zmq.Again:
                        break
                    except ProtocolError as exc:
                        self._rejects.add(exc.reason)
                        continue
                    self._accept(parts)
            now = time.monotonic()
            with self._lock:
                released = [(k, s.pop_ready(now)) for k, s in self._streams.items()]
            self._deliver(released)

    def _accept(self, parts: list[zmq.Frame]) -> None:
        limits = self.settings.limits
        try:
            info = p.decode_typed(parts[0], frozenset({p.COLLECT}), limits)
            worker = p.field(info, "worker", str, "")[:64]
            items = p.decode_items(parts, limits)
            for _, detections in items:
                p.check_detections(detections)
        except ProtocolError as exc:
            self._rejects.add(exc.reason)
            return
        self._counts["received"] += len(items)
        for listener in self._ack_listeners:
            listener([meta["id"] for meta, _ in items])
        now, wall = time.monotonic(), time.time()
        with self._lock:
            for meta, detections in items:
                stream = self._stream(meta["stream_key"])
                if stream is None:
                    self._rejects.add(REJECT_TOO_MANY_STREAMS)
                    continue
                result = DetectionResult(meta["stream_key"], meta["seq"], detections,
                                         {**meta, "worker": worker, "recv_ts": wall})
                stream.add(meta["seq"], result, now)

    def _stream(self, key: str) -> StreamReorder | None:
        """The reorder state of ``key`` (lock held); None when there are too many streams."""
        stream = self._streams.get(key)
        if stream is None and len(self._streams) < self.settings.max_streams:
            stream = self._streams[key] = StreamReorder(
                self.settings.reorder_timeout_s, self.settings.max_pending_per_stream)
        return stream

    def _deliver(self, released: list[tuple[str, list[tuple[int, Any]]]]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for _, results in released:
            for _, result in results:
                self._counts["delivered"] += 1
                for callback in subscribers:
                    try:
                        callback(result)
                    except Exception:  # noqa: BLE001 - one bad subscriber must not stop us
                        self._counts["subscriber_errors"] += 1
                        logger.exception("collector subscriber failed")
