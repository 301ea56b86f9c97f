"""The one VLM batcher all stations share: time-window batches, an in-flight cap, deadlines.

Threads (all daemons, all named ``vlm-*``):
- ``vlm-batcher`` takes an in-flight slot, then forms a batch: the window opens when the
  batch's first request was submitted and lasts ``batch_window_ms``; a full batch
  (``max_batch_size``) goes at once. With every slot busy, requests wait in the bounded
  queue (backpressure) and the next batch is formed from that backlog.
- ``vlm-backend-N`` (``max_in_flight`` of them) each run one ``backend.infer_batch`` at a
  time, so at most ``max_in_flight`` backend calls overlap.
- ``vlm-deadlines`` answers ``"timeout"`` at a request's deadline whether it is still queued
  or its backend call hangs; a late backend answer for it is dropped.

With ``publish``, every delivered answer also goes to :class:`VlmHealth`, which tells the
operator once when the VLM stops answering (unreachable, garbage, timing out) and once when it
is back — not once per order.

Every accepted request gets exactly one answer (the registry of pending requests decides who
delivers). A full queue is refused at once with ``BackpressureError`` rather than a ``False``
return: a station that ignored a ``False`` would wait for a callback that never comes, and an
exception cannot be ignored silently. A refused request is not accepted and gets no answer.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from edgeapp.engine.api import Notification
from edgeapp.engine.vlm.backend import Backend
from edgeapp.engine.vlm.health import VlmHealth
from edgeapp.engine.vlm.request import STOPPED, TIMEOUT, VlmAnswer, VlmRequest
from edgeapp.errors import BackpressureError, BatcherStoppedError, ConfigError, InputError

log = logging.getLogger(__name__)

AnswerCallback = Callable[[VlmAnswer], None]

_POLL_S = 0.1  # how often idle loops look at their stop flag


class BatcherState(Enum):
    """Lifecycle of the batcher: CREATED → RUNNING → STOPPING → STOPPED."""

    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class BatcherStats:
    """A snapshot of the batcher's queue, in-flight work and counters since start."""

    state: str
    queue_depth: int
    in_flight_batches: int
    in_flight_requests: int
    pending: int
    submitted: int
    answered: int
    rejected: int
    batches_sent: int
    mean_batch_size: float | None
    max_batch_size: int
    timeouts: int
    errors: int
    stopped: int
    late_answers: int
    callback_errors: int


class AnswerHandle:
    """Future-like handle of one accepted request; set after its callback has run."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._event = threading.Event()
        self._answer: VlmAnswer | None = None

    def done(self) -> bool:
        """True once the answer is there."""
        return self._event.is_set()

    def result(self, timeout: float | None = None) -> VlmAnswer:
        """The answer; raises ``TimeoutError`` if it is not there within ``timeout`` s."""
        if not self._event.wait(timeout):
            raise TimeoutError(f"no VLM answer for {self.request_id} within {timeout} s")
        assert self._answer is not None
        return self._answer

    def _set(self, answer: VlmAnswer) -> None:
        self._answer = answer
        self._event.set()


class _Pending:
    """A request the batcher has accepted and not yet answered."""

    __slots__ = ("request", "callback", "handle", "submitted", "deadline", "dispatched",
                 "batch_size")

    def __init__(self, request: VlmRequest, callback: AnswerCallback | None,
                 submitted: float, deadline: float) -> None:
        self.request = request
        self.callback = callback
        self.handle = AnswerHandle(request.request_id)
        self.submitted = submitted
        self.deadline = deadline
        self.dispatched: float | None = None
        self.batch_size = 0


class VlmBatcher:
    """Collects VLM requests from all stations into batches for one backend."""

    def __init__(
        self,
        backend: Backend,
        *,
        batch_window_ms: float = 50,
        max_batch_size: int = 16,
        max_in_flight: int = 4,
        queue_size: int = 64,
        default_timeout_s: float = 10.0,
        publish: Callable[[Notification], None] | None = None,
    ) -> None:
        for key, value, low in (
            ("batch_window_ms", batch_window_ms, 0),
            ("max_batch_size", max_batch_size, 1),
            ("max_in_flight", max_in_flight, 1),
            ("queue_size", queue_size, 1),
        ):
            if value < low:
                raise ConfigError(f"vlm.{key} must be >= {low}, got {value!r}")
        if default_timeout_s <= 0:
            raise ConfigError(f"vlm.default_timeout_s must be > 0, got {default_timeout_s!r}")
        self.backend = backend
        self.batch_window_s = batch_window_ms / 1000.0
        self.max_batch_size = int(max_batch_size)
        self.max_in_flight = int(max_in_flight)
        self.queue_size = int(queue_size)
        self.default_timeout_s = float(default_timeout_s)
        self.health = None if publish is None else VlmHealth(publish, self.default_timeout_s)

        self._lock = threading.Lock()
        self._deadline_changed = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._state = BatcherState.CREATED
        self._stop = threading.Event()
        self._workers_exit = threading.Event()
        self._watcher_exit = False
        self._queue: queue.Queue[_Pending] = queue.Queue(maxsize=self.queue_size)
        # at most max_in_flight batches are ever in here: the collector holds a slot per batch
        self._dispatch: queue.Queue[list[_Pending]] = queue.Queue()
        self._slots = threading.Semaphore(self.max_in_flight)
        self._pending: dict[str, _Pending] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._threads: list[threading.Thread] = []

        self._in_flight_batches = 0
        self._in_flight_requests = 0
        self._submitted = 0
        self._answered = 0
        self._rejected = 0
        self._batches_sent = 0
        self._batched_requests = 0
        self._max_batch_seen = 0
        self._timeouts = 0
        self._errors = 0
        self._stopped = 0
        self._late = 0
        self._callback_errors = 0

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        """Start the collector, the deadline watcher and the backend workers."""
        with self._lock:
            if self._state is not BatcherState.CREATED:
                raise BatcherStoppedError(f"VLM batcher cannot start from {self._state.value}")
            self._state = BatcherState.RUNNING
        self._threads = [
            threading.Thread(target=self._collect_loop, name="vlm-batcher", daemon=True),
            threading.Thread(target=self._watch_deadlines, name="vlm-deadlines", daemon=True),
        ] + [
            threading.Thread(target=self._worker_loop, name=f"vlm-backend-{i}", daemon=True)
            for i in range(self.max_in_flight)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Refuse new requests and send no new batches; returns at once (see ``join``)."""
        with self._lock:
            if self._state is BatcherState.RUNNING:
                self._state = BatcherState.STOPPING
            elif self._state is BatcherState.CREATED:
                self._state = BatcherState.STOPPED
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wind down after ``stop()``; True when every thread has ended.

        Order: queued requests are answered ``"stopped"`` by the collector; batches in
        flight get until ``timeout`` to finish with real answers; whatever is still pending
        then (a hung backend call) is answered ``"stopped"`` on the caller's thread, and a
        later backend answer is dropped. A backend thread stuck in a call ends when the
        call returns; ``join`` may be called again to wait for it.
        """
        end = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if end is None else max(0.0, end - time.monotonic())

        if not self._stop.is_set():
            for thread in self._threads[:1]:
                thread.join(left())
            return False
        for thread in self._threads[:1]:  # the collector: nothing new goes out after it
            thread.join(left())
        with self._lock:
            self._idle.wait_for(lambda: self._in_flight_batches == 0, left())
        self._workers_exit.set()
        with self._lock:
            leftovers = list(self._pending.values())
        for entry in leftovers:
            self._deliver(entry, VlmAnswer.failed(entry.request.request_id, STOPPED))
        with self._lock:
            self._watcher_exit = True
            self._deadline_changed.notify_all()
        for thread in self._threads[1:]:
            thread.join(left())
        done = not any(thread.is_alive() for thread in self._threads)
        if done:
            with self._lock:
                self._state = BatcherState.STOPPED
        return done

    def __enter__(self) -> VlmBatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(timeout=max(5.0, self.default_timeout_s))

    # ── the stations' side ───────────────────────────────────────────────────────────────

    def submit(
        self, request: VlmRequest, callback: AnswerCallback | None = None
    ) -> AnswerHandle:
        """Accept ``request``; its one answer goes to ``callback`` and to the returned handle.

        Never blocks. Raises ``BackpressureError`` when the queue is full and
        ``BatcherStoppedError`` when the batcher is not running (the request is then not
        accepted), ``InputError`` when a request with the same id is still pending.
        Callbacks run on the batcher's threads: keep them short (hand off to a queue);
        an exception in one is logged and counted, nothing else.
        """
        now = time.monotonic()
        deadline = request.deadline
        if deadline is None:
            deadline = request.created + self.default_timeout_s
        entry = _Pending(request, callback, now, deadline)
        rid = request.request_id
        with self._lock:
            if self._state is not BatcherState.RUNNING:
                raise BatcherStoppedError(
                    f"VLM batcher is {self._state.value}; request {rid} not accepted"
                )
            if rid in self._pending:
                raise InputError(f"VLM request id {rid!r} is already pending")
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self._rejected += 1
                raise BackpressureError(
                    f"VLM queue is full ({self.queue_size} requests waiting, "
                    f"{self._in_flight_batches} batches in flight); request {rid} not accepted"
                ) from None
            self._pending[rid] = entry
            self._submitted += 1
            heapq.heappush(self._deadlines, (deadline, rid))
            self._deadline_changed.notify()
        return entry.handle

    def stats(self) -> BatcherStats:
        """Queue depth, in-flight work and counters, taken under the lock."""
        with self._lock:
            return BatcherStats(
                state=self._state.value,
                queue_depth=self._queue.qsize(),
                in_flight_batches=self._in_flight_batches,
                in_flight_requests=self._in_flight_requests,
                pending=len(self._pending),
                submitted=self._submitted,
                answered=self._answered,
                rejected=self._rejected,
                batches_sent=self._batches_sent,
                mean_batch_size=(
                    self._batched_requests / self._batches_sent if self._batches_sent else None
                ),
                max_batch_size=self._max_batch_seen,
                timeouts=self._timeouts,
                errors=self._errors,
                stopped=self._stopped,
                late_answers=self._late,
                callback_errors=self._callback_errors,
            )

    # ── threads ──────────────────────────────────────────────────────────────────────────

    def _collect_loop(self) -> None:
        try:
            while not self._stop.is_set():
                # Slot first, then the batch: while every slot is busy the backlog grows in
                # the queue and goes out as one bigger batch when a slot frees.
                if not self._slots.acquire(timeout=_POLL_S):
                    continue
                batch = self._form_batch()
                if self._stop.is_set():  # stopped while the window was open: send nothing
                    self._slots.release()
                    self._fail(batch, STOPPED)
                    break
                batch = self._take_live(batch)
                if batch:
                    self._dispatch.put(batch)
                else:
                    self._slots.release()
        except Exception:  # a bug here must not leave stations waiting in silence
            log.exception("VLM batcher collector failed; pending requests are stopped")
            with self._lock:
                self._state = BatcherState.STOPPING  # refuse new requests from now on
            self._stop.set()
        finally:
            drained: list[_Pending] = []
            while True:
                try:
                    drained.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._fail(drained, STOPPED)

    def _form_batch(self) -> list[_Pending]:
        try:
            first = self._queue.get(timeout=_POLL_S)
        except queue.Empty:
            return []
        batch = [first]
        window_end = first.submitted + self.batch_window_s
        while len(batch) < self.max_batch_size and not self._stop.is_set():
            remaining = window_end - time.monotonic()
            try:
                # after the window, only what is already waiting joins the batch
                entry = (self._queue.get(timeout=remaining) if remaining > 0
                         else self._queue.get_nowait())
            except queue.Empty:
                break
            batch.append(entry)
        return batch

    def _take_live(self, batch: list[_Pending]) -> list[_Pending]:
        """Drop entries already answered (timed out while queued) and mark the rest sent."""
        now = time.monotonic()
        with self._lock:
            live = [e for e in batch
                    if self._pending.get(e.request.request_id) is e and e.deadline > now]
            if live:
                for entry in live:
                    entry.dispatched = now
                    entry.batch_size = len(live)
                self._in_flight_batches += 1
                self._in_flight_requests += len(live)
                self._batches_sent += 1
                self._batched_requests += len(live)
                self._max_batch_seen = max(self._max_batch_seen, len(live))
        return live

    def _worker_loop(self) -> None:
        while True:
            try:
                batch = self._dispatch.get(timeout=_POLL_S)
            except queue.Empty:
                if self._workers_exit.is_set():
                    return
                continue
            try:
                self._run_batch(batch)
            except Exception:
                log.exception("VLM batch routing failed")
                self._fail(batch, "backend error: batch routing failed")
            finally:
                with self._lock:
                    self._in_flight_batches -= 1
                    self._in_flight_requests -= len(batch)
                    self._idle.notify_all()
                self._slots.release()

    def _run_batch(self, batch: list[_Pending]) -> None:
        requests = [entry.request for entry in batch]
        try:
            answers = list(self.backend.infer_batch(requests))
        except Exception as exc:
            log.exception("VLM backend %s failed a batch of %d",
                          getattr(self.backend, "name", "?"), len(batch))
            self._fail(batch, f"backend error: {type(exc).__name__}: {exc}", from_backend=True)
            return
        by_id = {entry.request.request_id: entry for entry in batch}
        for answer in answers:
            entry = by_id.pop(answer.request_id, None) if isinstance(answer, VlmAnswer) else None
            if entry is None:
                log.warning("VLM backend answered an unknown or repeated request: %r",
                            getattr(answer, "request_id", answer))
                continue
            self._deliver(entry, answer, from_backend=True)
        self._fail(list(by_id.values()), "backend returned no answer", from_backend=True)

    def _watch_deadlines(self) -> None:
        while True:
            with self._lock:
                if self._watcher_exit:
                    return
                now = time.monotonic()
                expired: list[_Pending] = []
                while self._deadlines and self._deadlines[0][0] <= now:
                    _, rid = heapq.heappop(self._deadlines)
                    entry = self._pending.get(rid)
                    if entry is not None and entry.deadline <= now:
                        expired.append(entry)
                if not expired:
                    wait = self._deadlines[0][0] - now if self._deadlines else None
                    self._deadline_changed.wait(wait)
                    continue
            self._fail(expired, TIMEOUT)

    # ── delivery ─────────────────────────────────────────────────────────────────────────

    def _fail(self, entries: list[_Pending], error: str, from_backend: bool = False) -> None:
        for entry in entries:
            self._deliver(entry, VlmAnswer.failed(entry.request.request_id, error), from_backend)

    def _deliver(self, entry: _Pending, answer: VlmAnswer, from_backend: bool = False) -> bool:
        """Hand ``answer`` to the request's callback and handle, unless it was answered."""
        rid = entry.request.request_id
        with self._lock:
            if self._pending.get(rid) is not entry:
                if from_backend:  # it timed out or was stopped before the backend answered
                    self._late += 1
                return False
            del self._pending[rid]
            self._answered += 1
            if answer.error == TIMEOUT:
                self._timeouts += 1
            elif answer.error == STOPPED:
                self._stopped += 1
            elif answer.error is not None or answer.items is None:
                self._errors += 1
        now = time.monotonic()
        answer = replace(
            answer,
            request_id=rid,
            latency_s=now - entry.request.created,
            batch_size=entry.batch_size,
            queued_s=(entry.dispatched if entry.dispatched is not None else now)
            - entry.submitted,
        )
        if self.health is not None:
            self.health.observe(answer)
        if entry.callback is not None:
            try:
                entry.callback(answer)
            except Exception:
                log.exception("VLM answer callback for %s failed", rid)
                with self._lock:
                    self._callback_errors += 1
        entry.handle._set(answer)
        return True
