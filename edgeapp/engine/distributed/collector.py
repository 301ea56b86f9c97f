"""The Collector: a PULL socket that takes results from workers and hands them on in order.

One thread owns the socket. Each message is validated like the Producer validates requests
(size and part bounds, msgpack limits, dtype allow-list, ``prod(shape) * itemsize ==
len(data)``, detections ``(N, 6)`` float32 and finite); a bad one is counted per reason and
dropped. A well-formed result counts only when it answers a task out right now — its id, and
the stream, sequence and worker the task was handed out with (``Producer.claim``); the lease
then ends and the result goes on under the stream and sequence *the lease* names. Anything
else — a sequence far ahead, a stream nobody submitted, a task never or no longer leased,
another worker's task, a revoked key — is counted under its reason and dropped, so no peer can
freeze a stream or take its slots. Without an attached Producer nothing is leased, so nothing
is accepted.

Claimed results go through a per-stream :class:`StreamReorder`; subscribers get
:class:`DetectionResult` in frame order per stream, on the Collector thread. A stream's slot
is opened by the Producer's first frame of it (``expect``), freed by ``forget`` when the
stream ends, and given up by itself once nothing was expected or held for ``stream_idle_s``.
The thesis' worker sends the processed frame back instead of detections: such results reach
only subscribers that asked for frames (the video output). The thread sleeps until a message
comes, the Producer cancels a frame, or the oldest held-back result reaches its reorder
deadline — never a busy wait.
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
from edgeapp.engine.distributed.link import LeaseAuthority
from edgeapp.engine.distributed.processor import EMPTY_DETECTIONS
from edgeapp.engine.distributed.reorder import StreamReorder
from edgeapp.engine.distributed.settings import CollectorSettings
from edgeapp.engine.distributed.wakeup import Waker
from edgeapp.errors import ProtocolError

logger = logging.getLogger(__name__)

#: What a worker may push: results (edgeapp's and the seed's ``COLLECT``, the thesis' ``WORK``)
#: and the thesis' ``END`` when it stops.
RESULT_TYPES = frozenset({p.COLLECT, p.WORK, p.END})


@dataclass(frozen=True)
class DetectionResult:
    """Detections of one frame: ``(N, 6)`` float32 ``x1, y1, x2, y2, score, class`` (read-only).

    ``meta`` holds what the worker sent back — ``grade`` (the grade it was processed at),
    ``timings`` and any extra task fields — with ``id``, ``stream_key``, ``seq``,
    ``capture_ts`` and ``worker`` as the lease names them, plus ``recv_ts``. ``frame`` is the
    processed image a thesis-dialect worker sends instead of detections (then empty).
    """

    stream_key: str
    seq: int
    detections: np.ndarray
    meta: dict[str, Any]
    frame: np.ndarray | None = None


Subscriber = Callable[[DetectionResult], None]


class Collector:
    """Receives results over PULL and hands them on in order per stream; ``start/stop/join``."""

    def __init__(self, settings: CollectorSettings | None = None, **overrides: Any) -> None:
        self.settings = dataclasses.replace(settings or CollectorSettings(), **overrides)
        self.address: str | None = None
        self._lock = threading.Lock()
        self._streams: dict[str, StreamReorder] = {}
        self._active: dict[str, float] = {}  # last expect/result per stream (monotonic)
        self._forgotten: set[str] = set()  # streams to flush and free on the socket thread
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._authority: LeaseAuthority | None = None
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

    def subscribe(self, callback: Subscriber, *, frames: bool = False) -> Callable[[], None]:
        """Call ``callback(result)`` for every result, in order per stream; returns unsubscribe.

        Results that carry a processed frame instead of detections (``result.frame``) reach
        ``callback`` only with ``frames=True``.
        """
        entry = (callback, frames)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)
        return unsubscribe

    def set_lease_authority(self, claim: LeaseAuthority | None) -> None:
        """Who says whether a result answers a leased task (the Producer's ``claim``)."""
        self._authority = claim

    def expect(self, stream_key: str, seq: int) -> bool:
        """Frame ``seq`` of ``stream_key`` is on its way (called by the Producer); False when
        no stream slot is free for a new stream (its frames would be lost: do not send it)."""
        with self._lock:
            stream = self._stream(stream_key, time.monotonic())
            if stream is None:
                self._rejects.add(p.REJECT_TOO_MANY_STREAMS)
                return False
            stream.expect(seq)
            return True

    def cancel(self, stream_key: str, seq: int) -> None:
        """Frame ``seq`` of ``stream_key`` will not come: do not wait for it."""
        with self._lock:
            stream = self._streams.get(stream_key)
            if stream is not None:
                stream.cancel(seq)
        self._waker.wake()

    def forget(self, stream_key: str) -> None:
        """A stream ended: release what it holds back and free its slot."""
        with self._lock:
            self._forgotten.add(stream_key)
        self._waker.wake()

    def status(self) -> dict[str, Any]:
        """Counters: received, rejected per reason, and per stream released/duplicate/late/
        skipped plus frames expected and results held back."""
        with self._lock:
            streams = {k: {**s.counts, "expected": s.pending()[0], "held": s.pending()[1]}
                       for k, s in self._streams.items()}
        return {"address": self.address, **self._counts, "rejected": self._rejects.snapshot(),
                "streams": streams, "stream_slots_free": self.settings.max_streams - len(streams)}

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
                released += self._free_streams(now)
            self._deliver(released)

    def _free_streams(self, now: float) -> list[tuple[str, list[tuple[int, Any]]]]:
        """Free the slots of forgotten streams (flushing them) and of idle ones (lock held)."""
        released = []
        for key in self._forgotten:
            stream = self._streams.pop(key, None)
            self._active.pop(key, None)
            if stream is not None:
                released.append((key, stream.flush()))
        self._forgotten.clear()
        idle_s = self.settings.stream_idle_s
        for key in [k for k, s in self._streams.items()
                    if s.pending() == (0, 0) and now - self._active.get(k, now) > idle_s]:
            del self._streams[key]
            self._active.pop(key, None)
        return released

    def _accept(self, parts: list[zmq.Frame]) -> None:
        limits = self.settings.limits
        try:
            info = p.decode_typed(parts[0], RESULT_TYPES, limits)
            if info["type"] == p.END:  # the thesis worker's goodbye: nothing to hand on
                if len(parts) != 1:
                    raise ProtocolError(p.REJECT_BAD_PARTS, "END with data")
                self._counts["ended"] += 1
                return
            worker = p.field(info, "worker", str, None)
            items = p.decode_results(parts, limits)
        except ProtocolError as exc:
            self._rejects.add(exc.reason)
            return
        assert self._endpoint is not None
        user_id = self._endpoint.user_id(parts[0])
        if self._endpoint.revoked(user_id):
            self._rejects.add(p.REJECT_REVOKED)
            return
        now, wall = time.monotonic(), time.time()
        for meta, array in items:
            lease, reason = (None, p.REJECT_NOT_LEASED) if self._authority is None else \
                self._authority(meta["id"], meta.get("stream_key"), meta.get("seq"),
                                worker, user_id)
            if lease is None:
                self._rejects.add(reason)
                continue
            task = lease.task
            frame = array if p.is_frame(array) else None
            result = DetectionResult(
                task.stream_key, task.seq, EMPTY_DETECTIONS if frame is not None else array,
                {**meta, "id": task.id, "stream_key": task.stream_key, "seq": task.seq,
                 "capture_ts": task.capture_ts, "worker": lease.worker_id, "recv_ts": wall},
                frame)
            with self._lock:
                stream = self._streams.get(task.stream_key)
                if stream is None:
                    self._rejects.add(p.REJECT_STREAM_ENDED)
                    continue
                self._counts["received"] += 1
                self._active[task.stream_key] = now
                stream.add(task.seq, result, now)

    def _stream(self, key: str, now: float) -> StreamReorder | None:
        """The reorder state of ``key``, opened if need be (lock held); None when every slot
        is taken by a stream that still expects or holds frames."""
        stream = self._streams.get(key)
        if stream is not None:
            self._active[key] = now
            return stream
        if len(self._streams) >= self.settings.max_streams:
            idle = [k for k, s in self._streams.items() if s.pending() == (0, 0)]
            if not idle:
                return None
            oldest = min(idle, key=lambda k: self._active.get(k, 0.0))
            del self._streams[oldest]
            self._active.pop(oldest, None)
        stream = self._streams[key] = StreamReorder(
            self.settings.reorder_timeout_s, self.settings.max_pending_per_stream)
        self._active[key] = now
        return stream

    def _deliver(self, released: list[tuple[str, list[tuple[int, Any]]]]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for _, results in released:
            for _, result in results:
                self._counts["delivered"] += 1
                for callback, frames in subscribers:
                    if result.frame is not None and not frames:
                        continue
                    try:
                        callback(result)
                    except Exception:  # noqa: BLE001 - one bad subscriber must not stop us
                        self._counts["subscriber_errors"] += 1
                        logger.exception("collector subscriber failed")
