"""The run's running totals: verdicts, their accuracy against the truth, latencies, frames.

Verdict accuracy follows one rule (README, "Verdict accuracy"): it is the share of right
verdicts among the orders that got a verdict (validated, mismatch or unreadable) and whose
truth is known. A ``failed`` order got no verdict — whatever failed: the VLM, the camera, the
file's end, the station — so it is neither right nor wrong; it is counted by its reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from edgeapp.engine.distributed.collector import DetectionResult
from edgeapp.engine.metrics import LatencyWindow, percentiles
from edgeapp.engine.orders.result import OrderResult, OrderStatus

# The kind of a failure is its reason up to the first detail: "camera offline: http://…" ->
# "camera offline", "station crashed (killed by SIGKILL) while …" -> "station crashed".
_KIND_END = re.compile(r"[:;(]| while ")


def failure_kind(reason: str | None) -> str:
    """What failed, in a few words, from a failed order's reason."""
    text = _KIND_END.split(reason or "", maxsplit=1)[0].strip()
    return text or "unknown"


@dataclass(frozen=True)
class Interval:
    """What came through since the last control interval, for the controller's SLOs."""

    frames: int  # frames back from the workers
    frame_latencies: list[float]  # s, capture -> detections
    order_latencies: list[float]  # s, order end -> verdict, every order
    # s, of the orders that got a verdict: order end -> verdict without the VLM's answer
    # time, and with it (the part the stream parameters can shorten depends on where the VLM
    # runs: see ``streams_part``)
    judged_without_vlm: list[float]
    judged: list[float]

    def streams_part(self, vlm_shares_cpu: bool) -> float | None:
        """The worst order latency the stream parameters can shorten, or None: an order
        that failed says nothing about frames, and a VLM on another machine answers no
        faster for fewer frames here; one on this machine's cores does."""
        part = self.judged if vlm_shares_cpu else self.judged_without_vlm
        return max(part) if part else None


class RunTally:
    """Counts every verdict and every detected frame (thread-safe).

    Order latency percentiles for the summary are taken over every order of the run (a float
    per order), not over a rolling window: a summary says what each order waited.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: Counter[str] = Counter()
        self.failed_by_reason: Counter[str] = Counter()
        self.judged = self.correct = 0
        self._latencies: list[float] = []
        self.order_latency = LatencyWindow()  # recent orders, for the live status
        self.frame_latency = LatencyWindow()  # recent frames: capture -> detections
        self.frames = 0
        self._first_frame: float | None = None
        # Since the last take_interval(): what the controller's SLOs judge.
        self._interval_frames: list[float] = []
        self._interval_count = 0
        self._interval_orders: list[float] = []
        self._interval_judged: list[tuple[float, float]] = []  # (latency, VLM answer time)

    def add_result(self, result: OrderResult) -> None:
        """One more verdict."""
        with self._lock:
            self.by_status[result.status.value] += 1
            if result.status is OrderStatus.FAILED:
                self.failed_by_reason[failure_kind(result.reason)] += 1
            if result.latency_s is not None:
                self._latencies.append(result.latency_s)
                self._interval_orders.append(result.latency_s)
                self.order_latency.add(result.latency_s)
                if result.status is not OrderStatus.FAILED:
                    vlm = result.timings.get("vlm_s", 0.0)
                    self._interval_judged.append((result.latency_s, min(vlm, result.latency_s)))
            if result.truth_correct is not None:
                self.judged += 1
                self.correct += bool(result.truth_correct)

    def add_frame(self, result: DetectionResult) -> None:
        """One more frame through the whole detection path (Collector thread)."""
        with self._lock:
            if self._first_frame is None:
                self._first_frame = time.monotonic()
            self.frames += 1
            self._interval_count += 1
        capture_ts, recv_ts = result.meta.get("capture_ts"), result.meta.get("recv_ts")
        if isinstance(capture_ts, float) and isinstance(recv_ts, float):
            latency = recv_ts - capture_ts
            self.frame_latency.add(latency)
            with self._lock:
                self._interval_frames.append(latency)

    def take_interval(self) -> Interval:
        """What came through since the previous call."""
        with self._lock:
            frames, self._interval_frames = self._interval_frames, []
            count, self._interval_count = self._interval_count, 0
            orders, self._interval_orders = self._interval_orders, []
            judged, self._interval_judged = self._interval_judged, []
        return Interval(count, frames, orders, [lat - vlm for lat, vlm in judged],
                        [lat for lat, _ in judged])

    def summary(self, end: float) -> dict[str, Any]:
        """Orders by status, failed orders by reason, verdict accuracy (the rule above),
        latency p50/p95/p99, frames/s up to ``end``."""
        with self._lock:
            latencies, by_status = list(self._latencies), dict(self.by_status)
            failed = dict(self.failed_by_reason)
            judged, correct, frames, first = self.judged, self.correct, self.frames, \
                self._first_frame
        p50, p95, p99 = percentiles(latencies, 50, 95, 99)
        # From the first detected frame: the stations' start-up (OCR models loading) is not
        # time the pipeline could have moved frames in.
        detecting = None if first is None else end - first
        return {
            "orders": sum(by_status.values()), "by_status": by_status,
            "failed_by_reason": failed, "judged": judged, "correct": correct,
            "verdict_accuracy": correct / judged if judged else None,
            "latency_p50_s": p50, "latency_p95_s": p95, "latency_p99_s": p99,
            "frames_per_s": frames / detecting if detecting else None,
        }
