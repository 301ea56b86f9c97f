"""The Producer: a ROUTER that hands frames to workers, with leases, grades and a clean END.

One thread owns the ROUTER socket (ZeroMQ sockets are not thread-safe); other threads reach it
only through the thread-safe TaskQueue and WorkerBook, the grade lock and a Waker. A GET_WORK
with nothing to hand out is held ``hold_s``, then answered NO_WORK: workers never spin.

Workers of every dialect (``dialects.py``: edgeapp's, the seed's text, the thesis' code) are
served side by side, each answered in its own. A peer that is not registered gets, no sooner
than ``stranger_hold_s`` after it asked, what it understands (edgeapp: ``ERROR
not_registered``, so it registers again; the others: END), so that none can spin. With CURVE,
a peer whose key was revoked is dropped at its next message, and its tasks go back.

Grade rule ("CHANGE before the next task"): a worker gets tasks only once it has been sent the
current grade, and each task carries the grade it went out at (``grade`` in its metadata).
``set_grade`` and the hand-out share one lock, so every task handed out after ``set_grade(n)``
returned goes out at ``n``, to a worker that was sent CHANGE to ``n`` (or registered at ``n``).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from edgeapp.engine.api import WorkerJoined, WorkerLeft
from edgeapp.engine.distributed import dialects
from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.endpoint import ServerEndpoint
from edgeapp.engine.distributed.link import TaskListener
from edgeapp.engine.distributed.settings import ProducerSettings
from edgeapp.engine.distributed.task_queue import Task, TaskQueue
from edgeapp.engine.distributed.wakeup import Waker
from edgeapp.engine.distributed.workers import (
    Lease,
    WorkerBook,
    WorkerEvent,
    WorkerRecord,
)
from edgeapp.errors import ProtocolError

logger = logging.getLogger(__name__)

#: Unregistered peers whose answer is held back at once; beyond, the oldest is answered now.
MAX_STRANGERS = 1024


class ProducerState(enum.Enum):
    """Life of a Producer: only forward, one step at a time (ENDING may be skipped to STOPPED)."""

    CREATED = "created"
    RUNNING = "running"
    FINISHING = "finishing"  # no new frames; handing out what is queued
    ENDING = "ending"  # answering END to everyone for a bounded time
    STOPPED = "stopped"


class Producer:
    """Hands queued frames to workers over a ROUTER socket; ``start/stop/finish/join``."""

    _sock: zmq.Socket  # set by start(); used only by the socket thread

    def __init__(self, settings: ProducerSettings | None = None, *,
                 on_event: Callable[[WorkerEvent], None] | None = None, **overrides: Any) -> None:
        s = dataclasses.replace(settings or ProducerSettings(), **overrides)
        p.WorkType(s.work_type)
        p.check_grade(s.grade)
        self.settings = s
        self.address: str | None = None
        self.batch_size = max(1, min(s.batch_size, s.limits.max_batch))
        self.collector_address = s.collector_address
        self.on_event = on_event
        self.state = ProducerState.CREATED
        self._grade = int(s.grade)
        self._grade_lock = threading.Lock()
        self._queue = TaskQueue(s.queue_size)
        self._book = WorkerBook(s.lease_s, s.heartbeat_s * s.liveness)
        self._listener: TaskListener | None = None
        self._ids = itertools.count(secrets.randbits(30) << 32)  # unique across restarts
        self._parked: OrderedDict[bytes, tuple[WorkerRecord, float, int]] = OrderedDict()
        self._strangers: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._rejects = p.RejectCounter()
        self._failed: Counter[str] = Counter()
        self._unslotted: Counter[str] = Counter()
        self._requeued = 0
        self._waker = Waker()
        self._abort = False
        self._drain_deadline = self._end_deadline = self._end_started = 0.0
        self._thread: threading.Thread | None = None
        self._endpoint: ServerEndpoint | None = None
        self.error: BaseException | None = None

    # --- public API (any thread) --------------------------------------------------------------

    def attach_collector(self, collector: Any) -> None:
        """Tell ``collector`` which frames to expect, and let it claim leases (in-process)."""
        self._listener = collector
        collector.set_lease_authority(self.claim)
        if self.collector_address is None:
            self.collector_address = getattr(collector, "address", None)

    def start(self) -> None:
        """Bind (raising SecurityError/TransportError here) and start the socket thread."""
        s = self.settings
        self._endpoint = ServerEndpoint(
            zmq.ROUTER, s.address, max_message_bytes=s.limits.max_header_bytes,
            keys_dir=s.keys_dir, insecure=s.insecure, options={zmq.ROUTER_MANDATORY: 1})
        assert self._endpoint.socket is not None
        self._sock = self._endpoint.socket
        self.address = self._endpoint.address
        self.state = ProducerState.RUNNING
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)
        self._thread.start()

    def submit(self, stream_key: str, seq: int, image: np.ndarray,
               capture_ts: float | None = None, **meta: Any) -> bool:
        """Queue a frame for detection; False once the Producer no longer takes frames.

        The image is sent without a copy: do not modify it after submitting.
        """
        if self.state not in (ProducerState.CREATED, ProducerState.RUNNING):
            return False
        p.check_task(stream_key, seq, image, meta)
        task = Task(next(self._ids), stream_key, int(seq),
                    time.time() if capture_ts is None else float(capture_ts),
                    np.ascontiguousarray(image), meta)
        if self._listener is not None and not self._listener.expect(stream_key, task.seq):
            self._unslotted[stream_key] += 1  # the Collector could not take the stream
            return True
        self._abandon(self._queue.put(task))
        self._waker.wake()
        return True

    def claim(self, task_id: int, stream_key: str | int | None, seq: int | None,
              worker: str | None, user_id: str) -> tuple[Lease | None, str]:
        """A result for ``task_id`` reached the Collector: end its lease, if the result
        answers it (see ``WorkerBook.claim``); else the reason it does not."""
        lease, reason = self._book.claim(task_id, stream_key, seq, worker, user_id)
        if lease is not None and self.state is ProducerState.FINISHING:
            self._waker.wake()
        return lease, reason

    def set_grade(self, grade: int) -> None:
        """Switch every worker to ``grade``: each gets CHANGE before its next task."""
        with self._grade_lock:
            self._grade = p.check_grade(grade)
        self._waker.wake()

    def finish(self, drain_timeout_s: float = 30.0) -> None:
        """Take no more frames, hand out what is queued (bounded), then END the workers."""
        if self.state in (ProducerState.CREATED, ProducerState.RUNNING):
            self._drain_deadline = time.monotonic() + drain_timeout_s
            self.state = ProducerState.FINISHING
        self._waker.wake()

    def stop(self, end_workers: bool = True) -> None:
        """Stop now: END every worker that asks (bounded), or just go away (no END)."""
        if self._thread is None:  # never started: nothing to end
            self.state = ProducerState.STOPPED
        self._abort = self._abort or not end_workers
        if self.state in (ProducerState.CREATED, ProducerState.RUNNING,
                          ProducerState.FINISHING):
            self._drain_deadline = 0.0
            self.state = ProducerState.FINISHING
        self._waker.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the socket thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def queue_size(self) -> int:
        """Frames waiting to be handed out."""
        return len(self._queue)

    def dropped(self) -> dict[str, int]:
        """Frames dropped per stream: the queue was full, or the Collector had no slot free
        for the stream."""
        return dict(Counter(self._queue.dropped()) + self._unslotted)

    def status(self) -> dict[str, Any]:
        """A plain-data snapshot: queue, drops, leases, grade, workers, rejected messages."""
        return {
            "state": self.state.value, "address": self.address, "grade": self._grade,
            "queue_size": len(self._queue), "queue_by_stream": self._queue.sizes(),
            "dropped": self.dropped(), "failed": dict(self._failed),
            "leased": self._book.lease_count(), "requeued": self._requeued,
            "workers": self._book.snapshot(), "rejected": self._rejects.snapshot(),
        }

    # --- socket thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported through .error and the log
            self.error = exc
            logger.exception("producer thread failed")
        finally:
            self._abandon(self._queue.clear() + self._book.all_leased())
            self._close()
            self.state = ProducerState.STOPPED

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._waker.fileno(), zmq.POLLIN)
        tick = max(0.01, min(self.settings.heartbeat_s, self._book.lease_s) / 4)
        next_check = 0.0
        while not self._abort:
            now = time.monotonic()
            if now >= next_check:
                self._expire(now)
                next_check = now + tick
            self._advance(now)
            self._serve_parked(now)
            self._serve_strangers(now)
            grace_end = self._end_started + self.settings.end_grace_s
            if self.state is ProducerState.ENDING and (
                    now >= self._end_deadline or (now >= grace_end and not self._book.records())):
                return
            deadlines = [next_check] + [d for _, d, _ in self._parked.values()]
            if self._strangers:
                deadlines.append(next(iter(self._strangers.values()))[0])
            if self.state is ProducerState.ENDING:
                deadlines += [self._end_deadline] + ([grace_end] if now < grace_end else [])
            elif self.state is ProducerState.FINISHING:
                deadlines.append(self._drain_deadline)
            timeout_ms = max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)
            events = dict(poller.poll(timeout_ms))
            if self._waker.fileno() in events:
                self._waker.drain()
            if self._sock in events:
                self._read_requests()

    def _read_requests(self) -> None:
        for _ in range(256):  # bounded burst, then look at timers again
            try:
                parts = p.recv_bounded(self._sock, 4)
            except zmq.Again:
                return
            except ProtocolError as exc:
                self._rejects.add(exc.reason)
                continue
            now = time.monotonic()
            self._advance(now)  # a request after stop() returned must already see END
            self._handle(parts, now)

    def _handle(self, parts: list[zmq.Frame], now: float) -> None:
        identity = parts[0].bytes
        if len(parts) < 3 or parts[1].bytes != b"":
            self._rejects.add(p.REJECT_NOT_REQ)  # not a REQ peer: nobody waits for a reply
            return
        if len(parts) > 3:
            self._reject(identity, p.REJECT_BAD_PARTS)  # a REQ peer: keep it in step
            return
        assert self._endpoint is not None
        user_id = self._endpoint.user_id(parts[2])
        if self._endpoint.revoked(user_id):
            self._revoke(self._book.remove(identity), "revoked")
            self._reject(identity, p.REJECT_REVOKED, "this worker's key was revoked")
            return
        try:
            msg = p.decode_typed(parts[2], p.REQUEST_TYPES, self.settings.limits)
            stats = p.field(msg, "stats", dict, None)
            if msg["type"] == p.REGISTER:
                self._register(identity, msg, now, user_id)
                return
            record = self._book.get(identity)
            if record is None:
                self._stranger(identity, msg, now)
                return
            self._book.touch(record, now, stats)
            if msg["type"] == p.GET_WORK:
                record.dialect = dialects.on_get_work(record.dialect, msg)
            if msg["type"] == p.HEARTBEAT:
                if self.state is ProducerState.ENDING:
                    self._end(identity, record)
                else:
                    self._send(identity, [p.message(p.HEARTBEAT)])
                return
            want = p.field(msg, "max_tasks", int, self.batch_size)
            if not self._reply_work(identity, record, max(1, min(want, self.batch_size)),
                                    now, final=False):
                self._parked[identity] = (record, now + self.settings.hold_s, want)
        except ProtocolError as exc:
            self._reject(identity, exc.reason, str(exc))

    def _register(self, identity: bytes, msg: dict, now: float, user_id: str) -> None:
        if self.state is ProducerState.ENDING:
            self._send(identity, [p.message(p.END)])
            return
        name = p.field(msg, "worker", str, "")[:64]
        host = p.field(msg, "host", str, "")[:128]
        pid = p.field(msg, "pid", int, 0)
        dialect = dialects.at_register(msg, identity)
        with self._grade_lock:
            grade = self._grade
            record, replaced, tasks = self._book.register(
                identity, name, host, pid, grade, now, dialect=dialect, user_id=user_id)
        for old in replaced:
            self._parked.pop(old.identity, None)
            self._emit(WorkerLeft(old.worker_id, old.name, "replaced", len(tasks)))
        self._requeue(tasks)
        s = self.settings
        reply = p.confirmation(
            s.confirmation_extra, work_type=s.work_type, work_load=grade,
            loading_mode=s.loading_mode, worker_id=record.worker_id, heartbeat_s=s.heartbeat_s,
            liveness=s.liveness, lease_s=s.lease_s, batch_size=self.batch_size,
            collector=self.collector_address)
        self._send(identity, [reply])
        self._emit(WorkerJoined(record.worker_id, record.name, host))

    def _stranger(self, identity: bytes, msg: dict, now: float) -> None:
        """An unregistered peer asked: answer it what it understands, but not before
        ``stranger_hold_s`` (a REQ peer waits for it; a peer in a loop cannot spin)."""
        self._rejects.add(p.REJECT_NOT_REGISTERED)
        if self.state is ProducerState.ENDING:
            self._send(identity, [p.message(p.END)])
            return
        self._strangers.pop(identity, None)
        self._strangers[identity] = (now + self.settings.stranger_hold_s,
                                     dialects.stranger_reply(msg))
        while len(self._strangers) > MAX_STRANGERS:
            old, (_, reply) = self._strangers.popitem(last=False)
            self._send(old, [reply])

    def _serve_strangers(self, now: float) -> None:
        while self._strangers:
            identity, (deadline, reply) = next(iter(self._strangers.items()))
            if deadline > now and self.state is not ProducerState.ENDING:
                return
            del self._strangers[identity]
            self._send(identity, [reply])
    def _reply_work(self, identity: bytes, record: WorkerRecord, max_tasks: int, now: float,
                    final: bool) -> bool:
        """Answer a GET_WORK with END, CHANGE or tasks; NO_WORK only when ``final``."""
        if self.state is ProducerState.ENDING:
            self._end(identity, record)
            return True
        with self._grade_lock:
            change = record.grade != self._grade
            record.grade = self._grade
            tasks = [] if change else self._queue.pop(max_tasks)
        if change:
            self._send(identity, [dialects.change_reply(record.dialect, record.grade)])
            return True
        if tasks:
            self._book.lease(record, tasks, now)
            frames = p.inference_reply(
                [(t.image, {**t.meta, "id": t.id, "stream_key": t.stream_key, "seq": t.seq,
                            "capture_ts": t.capture_ts, "attempt": t.attempts})
                 for t in tasks], grade=record.grade,
                kind=dialects.work_reply_type(record.dialect))
            if self._send(identity, frames):
                self._book.touch(record, time.monotonic(), None)
            return True
        if final:
            self._send(identity, [p.message(p.NO_WORK)])
            return True
        return False

    def _serve_parked(self, now: float) -> None:
        for identity, (record, deadline, want) in list(self._parked.items()):
            if self._reply_work(identity, record, max(1, min(want, self.batch_size)), now,
                                final=now >= deadline):
                self._parked.pop(identity, None)

    def _end(self, identity: bytes, record: WorkerRecord) -> None:
        self._send(identity, [p.message(p.END)])
        self._book.remove(identity, keep_leases=True)  # it delivers what it holds, then goes
        self._emit(WorkerLeft(record.worker_id, record.name, "end", 0))

    def _advance(self, now: float) -> None:
        """FINISHING becomes ENDING once drained, or at once after ``stop()``."""
        if self.state is ProducerState.FINISHING and (
                now >= self._drain_deadline
                or (not len(self._queue) and not self._book.lease_count())):
            self.state = ProducerState.ENDING
            self._end_started = now
            self._end_deadline = now + self.settings.end_timeout
            self._abandon(self._queue.clear())

    def _expire(self, now: float) -> None:
        silent, lost = self._book.expire(now)
        for record in silent:
            self._parked.pop(record.identity, None)
            self._emit(WorkerLeft(record.worker_id, record.name, "silent", len(record.leased)))
        self._requeue(lost)
        keyring = self._endpoint.keyring if self._endpoint is not None else None
        if keyring is not None:  # `edgeapp keys revoke` while the worker is busy
            for gone in self._book.revoke(keyring.allowed):
                self._revoke(gone, "revoked")

    def _revoke(self, gone: tuple[WorkerRecord | None, list[Task]], reason: str) -> None:
        record, tasks = gone
        if record is None:
            return
        if self._parked.pop(record.identity, None) is not None:  # it waits for an answer
            self._send(record.identity, [p.error_reply(p.REJECT_REVOKED, "key revoked")])
        self._emit(WorkerLeft(record.worker_id, record.name, reason, len(tasks)))
        self._requeue(tasks)

    def _requeue(self, tasks: list[Task]) -> None:
        """Lost tasks go back to the front, unless they were tried ``max_attempts`` times."""
        failed = [t for t in tasks if t.attempts >= self.settings.max_attempts]
        self._failed.update(t.stream_key for t in failed)
        again = [t for t in tasks if t.attempts < self.settings.max_attempts]
        if self.state in (ProducerState.ENDING, ProducerState.STOPPED):
            failed, again = failed + again, []
        self._requeued += len(again)
        self._abandon(failed + self._queue.requeue(again))

    def _abandon(self, tasks: list[Task]) -> None:
        if self._listener is not None:
            for t in tasks:
                self._listener.cancel(t.stream_key, t.seq)

    def _reject(self, identity: bytes, reason: str, detail: str = "") -> None:
        self._rejects.add(reason)
        self._send(identity, [p.error_reply(reason, detail)])

    def _send(self, identity: bytes, frames: list[Any]) -> bool:
        """Reply to one REQ peer; a peer that is gone loses its record and its leases."""
        try:
            self._sock.send_multipart([identity, b"", *frames], copy=False)
            return True
        except zmq.ZMQError as exc:  # EHOSTUNREACH (ROUTER_MANDATORY): the peer went away
            record, tasks = self._book.remove(identity)
            self._parked.pop(identity, None)
            if record is not None:
                self._emit(WorkerLeft(record.worker_id, record.name, "unreachable", len(tasks)))
                self._requeue(tasks)
            logger.debug("reply to a peer failed: %s", exc)
            return False

    def _emit(self, event: WorkerEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - a bad subscriber must not stop the Producer
                logger.exception("producer event callback failed")

    def _close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
        self._waker.close()

