"""Per-order figures: verdicts by station and status, the latency histogram, the last minute.

Every order counts once with its own latency (order end -> verdict): the percentiles are of
the orders themselves, never of averages, and the histogram's buckets are cumulative counts
in the Prometheus sense (``le``: at most that many seconds).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from edgeapp.engine.metrics.windows import TimedWindow, percentiles
from edgeapp.engine.orders.result import OrderResult

#: Upper bounds (s) of the order latency buckets: finer around the 5 s SLO.
LATENCY_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0, 60.0)
RECENT_S = 60.0


@dataclass(frozen=True)
class LatencyHistogram:
    """Cumulative counts per upper bound (the last bound is +inf), their sum and count."""

    buckets: tuple[tuple[float, int], ...]
    sum_s: float
    count: int


class OrderMetrics:
    """Counts every verdict and keeps its latency (thread-safe)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S,
                 recent_s: float = RECENT_S) -> None:
        self._lock = threading.Lock()
        self._bounds = tuple(sorted(buckets))
        self._in_bucket = [0] * (len(self._bounds) + 1)  # the last: above every bound
        self._sum = 0.0
        self._counts: Counter[tuple[str, str]] = Counter()
        self._recent_latency = TimedWindow(recent_s)
        self._recent_orders = TimedWindow(recent_s)
        self._since = time.monotonic()

    def add(self, result: OrderResult, now: float | None = None) -> None:
        """One more verdict (any status); its latency counts when it was measured."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._counts[(result.station_id, result.status.value)] += 1
            latency = result.latency_s
            if latency is not None:
                self._in_bucket[bisect.bisect_left(self._bounds, latency)] += 1
                self._sum += latency
        self._recent_orders.add(1.0, t)
        if latency is not None:
            self._recent_latency.add(latency, t)

    def counts(self) -> dict[tuple[str, str], int]:
        """Verdicts so far by (station, status)."""
        with self._lock:
            return dict(self._counts)

    def histogram(self) -> LatencyHistogram:
        """The latency histogram of every order so far."""
        with self._lock:
            in_bucket, total = list(self._in_bucket), self._sum
        cumulative, running = [], 0
        for bound, n in zip((*self._bounds, math.inf), in_bucket, strict=True):
            running += n
            cumulative.append((bound, running))
        return LatencyHistogram(tuple(cumulative), total, running)

    def recent_latency(self, *qs: float, now: float | None = None) -> tuple[float | None, ...]:
        """Percentiles ``qs`` (0..100) of the latencies of the orders of the last minute."""
        return percentiles(self._recent_latency.values(now), *qs)

    def orders_per_min(self, now: float | None = None) -> float | None:
        """Verdicts per minute over the last minute (or since the start, when shorter)."""
        t = time.monotonic() if now is None else now
        span = min(self._recent_orders.window_s, t - self._since)
        if span <= 0:
            return None
        return len(self._recent_orders.values(t)) * 60.0 / span
