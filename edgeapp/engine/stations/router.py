"""Moves the stations' messages: frames to the Producer, order frames to the VLM batcher,
verdicts to the store, detections and answers back to the stations.

The router runs on the pool's thread for what stations send (``handle``) and on the
Collector's thread for detections coming back (``deliver``). Frames go straight from a
station's ring to the Producer, with the detector input size of the parameters in force
(computed once per parameter change, in ``set_parameters``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeapp.engine.api import EngineEvent, LatestFrame, Notification, Severity
from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.channel import ORDER
from edgeapp.engine.stations.record import StationRecord
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vlm.request import VlmAnswer, VlmRequest
from edgeapp.errors import BackpressureError, BatcherStoppedError

if TYPE_CHECKING:
    from edgeapp.engine.distributed.collector import DetectionResult
    from edgeapp.engine.distributed.producer import Producer
    from edgeapp.engine.vlm.batcher import VlmBatcher

logger = logging.getLogger(__name__)

InputSize = Callable[[float, Grade], "int | None"]


class StationRouter:
    """Serves every station's messages; see the module docstring."""

    def __init__(self, *, lookup: Callable[[str], StationRecord | None],
                 records: Callable[[], list[StationRecord]],
                 on_result: Callable[[OrderResult], None],
                 publish: Callable[[EngineEvent], None],
                 expected: Callable[[str], dict[str, int] | None],
                 input_size: InputSize, vlm_timeout_s: float) -> None:
        self._lookup, self._records = lookup, records
        self._on_result, self._publish, self._expected = on_result, publish, expected
        self._input_size = input_size
        self._vlm_timeout_s = vlm_timeout_s
        self._producer: Producer | None = None
        self._batcher: VlmBatcher | None = None
        self._meta: dict[str, Any] = {}

    def attach(self, producer: Producer, batcher: VlmBatcher) -> None:
        """Where frames and order frames go (before any station starts)."""
        self._producer, self._batcher = producer, batcher

    def set_parameters(self, scale: float, grade: Grade) -> None:
        """Frames from now on are detected at the input size of ``scale`` and ``grade``."""
        size = self._input_size(scale, grade)
        self._meta = {} if size is None else {"input_size": size}

    # ── station → engine (pool thread) ───────────────────────────────────────────────────

    def handle(self, record: StationRecord, message: object) -> None:
        """One message from ``record``'s station."""
        if isinstance(message, m.FrameReady):
            self._frame(record, message)
        elif isinstance(message, m.VlmAsk):
            self._forward_ask(record, message)
        elif isinstance(message, m.ResultReady):
            result = OrderResult.from_dict(message.result)
            record.asks.pop(result.result_id, None)
            self._on_result(result)
        elif isinstance(message, m.OrderUpdate):
            self._order_update(record, message)
        elif isinstance(message, m.StationStats):
            record.take_stats(message)
        elif isinstance(message, m.StationNotice):
            self._publish(Notification(Severity[message.severity.upper()], message.text,
                                       record.name))

    def _frame(self, record: StationRecord, ready: m.FrameReady) -> None:
        channel = record.channel
        frame = channel.frame("live", ready.slot, ready.seq) if channel is not None else None
        if frame is None:
            record.frames_lost += 1
        else:
            self._submit(record, ready.seq, frame.image, ready.capture_ts)

    def submit_frame(self, station: str, seq: int, image: np.ndarray,
                     capture_ts: float) -> None:
        """A frame that came over the network (Redis backend's frame gateway thread)."""
        record = self._lookup(station)
        if record is not None and record.channel is not None:
            self._submit(record, seq, image, capture_ts)

    def _submit(self, record: StationRecord, seq: int, image: np.ndarray,
                capture_ts: float) -> None:
        producer = self._producer
        if producer is None or not producer.submit(record.name, seq, image, capture_ts,
                                                   **self._meta):
            record.frames_refused += 1

    def _forward_ask(self, record: StationRecord, ask: m.VlmAsk) -> None:
        channel = record.channel
        assert channel is not None
        record.asks[ask.request_id] = ask.order_id
        frames = [channel.frame(ORDER, slot, seq)
                  for slot, seq in zip(ask.slots, ask.seqs, strict=True)]
        if any(f is None for f in frames):
            channel.post(m.VlmReply(ask.request_id, None,
                                    "order frames lost before the VLM was asked"))
            return

        def deliver(answer: VlmAnswer) -> None:  # the batcher's thread; this process only
            channel.post(m.VlmReply(answer.request_id, answer.items, answer.error,
                                    answer.unknown, answer.queued_s, answer.latency_s,
                                    answer.batch_size))

        request = VlmRequest(ask.request_id, record.name, ask.order_id,
                             tuple(f.image for f in frames if f is not None), ask.detections,
                             deadline=time.monotonic() + self._vlm_timeout_s)
        try:
            if self._batcher is None:
                raise BatcherStoppedError("the VLM batcher has not started")
            self._batcher.submit(request, deliver)
        except (BackpressureError, BatcherStoppedError) as exc:
            deliver(VlmAnswer.failed(ask.request_id, str(exc)))

    def _order_update(self, record: StationRecord, update: m.OrderUpdate) -> None:
        record.busy, record.order_started = update.busy, update.started_ts
        new_id = update.order_id if update.busy else None
        if new_id is not None and new_id != record.order_id:
            others = [o.name for o in self._records()
                      if o is not record and o.live and o.busy and o.order_id == new_id]
            if others:
                self._publish(Notification(
                    Severity.WARNING, f"order {new_id} is on the counter at {record.name} and "
                                      f"at {', '.join(others)}: both are checked, check the "
                                      "tickets", record.name))
        record.order_id = new_id

    def fail_in_flight(self, record: StationRecord, reason: str) -> None:
        """Every order the ended station held becomes ``failed`` with ``reason``."""
        orders = [(f"{record.name}-lost-{rid}", oid) for rid, oid in record.asks.items()]
        # An order that was asked about but not yet told "idle" is already in the asks.
        if record.busy and (record.order_id is None
                            or record.order_id not in record.asks.values()):
            orders.append((f"{record.name}-lost-{time.time_ns()}", record.order_id))
        record.asks.clear()
        record.busy = False
        for result_id, order_id in orders:
            self._on_result(OrderResult(
                order_id=order_id or "", station_id=record.name,
                expected_items=(self._expected(order_id) if order_id else None) or {},
                detected_items={}, status=OrderStatus.FAILED,
                reason=f"{reason} while the order was in progress", result_id=result_id))

    # ── engine → station ─────────────────────────────────────────────────────────────────

    def deliver(self, result: DetectionResult) -> None:
        """Route a frame's detections to its station (Collector thread)."""
        record = self._lookup(result.stream_key)
        channel = record.channel if record is not None else None
        if record is None or channel is None:
            return
        record.latest = (result.seq, result.detections)
        record.detected.add()
        record.frames_processed += 1
        capture_ts = result.meta.get("capture_ts")
        if isinstance(capture_ts, float):
            record.frame_latency.add(result.meta.get("recv_ts", time.time()) - capture_ts)
        channel.post(m.Detections(result.seq, result.detections), droppable=True)

    def latest_frame(self, station: str, unless_seq: int | None = None) -> LatestFrame | None:
        """The newest frame of ``station`` with the newest detections (copies); None also
        when that frame's seq is ``unless_seq`` (the caller has it: a display polls without
        copying)."""
        record = self._lookup(station)
        channel = record.channel if record is not None else None
        if record is None or channel is None:
            return None
        latest = record.latest
        prefer = latest[0] if latest is not None else None
        if unless_seq is not None and channel.newest_seq(prefer) == unless_seq:
            return None
        frame = channel.newest(prefer)
        if frame is None:
            return None
        dets_seq, dets = latest if latest is not None else (None, None)
        return LatestFrame(station, frame.seq, frame.capture_ts, frame.image, dets, dets_seq)
