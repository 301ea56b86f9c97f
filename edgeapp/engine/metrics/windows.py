"""Rates, latency windows and percentiles: the small meters the pipeline's parts keep.

A figure with no samples yet is ``None``, never 0.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable

import numpy as np


class RateMeter:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._since = time.monotonic()

    def add(self, n: int = 1, now: float | None = None) -> None:
        """Count ``n`` events now."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._times.extend([t] * n)
            self._trim(t)

    def rate(self, now: float | None = None) -> float | None:
        """Events per second over the window (or since the meter was made, if shorter)."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._trim(t)
            span = min(self._window, t - self._since)
            return len(self._times) / span if span > 0 else None

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` latency samples (seconds), for percentiles (thread-safe)."""

    def __init__(self, size: int = 512) -> None:
        self._samples: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        """Record one sample."""
        with self._lock:
            self._samples.append(float(seconds))

    def percentiles(self, *qs: float) -> tuple[float | None, ...]:
        """The ``qs`` percentiles (0..100) of the samples; Nones when there are none."""
        with self._lock:
            samples = list(self._samples)
        return percentiles(samples, *qs)

    def __len__(self) -> int:
        return len(self._samples)


def percentiles(values: Iterable[float], *qs: float) -> tuple[float | None, ...]:
    """numpy percentiles (linear interpolation) of ``values``; Nones for an empty list."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return tuple(None for _ in qs)
    return tuple(float(v) for v in np.percentile(data, qs))


class TimedWindow:
    """Samples of the last ``window_s`` seconds, each with its time (thread-safe).

    For true per-order percentiles over a time span: every sample counts once, none is an
    average of others.
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()

    def add(self, value: float, now: float | None = None) -> None:
        """Record ``value`` at ``now`` (monotonic seconds; default: now)."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._samples.append((t, float(value)))
            self._trim(t)

    def values(self, now: float | None = None) -> list[float]:
        """The samples of the last ``window_s`` seconds, oldest first."""
        t = time.monotonic() if now is None else now
        with self._lock:
            self._trim(t)
            return [v for _, v in self._samples]

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
