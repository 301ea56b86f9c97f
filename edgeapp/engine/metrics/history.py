"""The bounded metrics history the window's plots read: one ``MetricsPoint`` a second."""

from __future__ import annotations

import collections
import threading

from edgeapp.engine.api import MetricsPoint

#: 30 minutes at one point a second (the plots need 15; a point is about 1 KiB).
HISTORY_POINTS = 1800


class MetricsHistory:
    """A ring of the newest ``capacity`` points, oldest first (thread-safe)."""

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._points: collections.deque[MetricsPoint] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()

    def append(self, point: MetricsPoint) -> None:
        """Add the newest point (the oldest falls out when full)."""
        with self._lock:
            self._points.append(point)

    def since(self, ts: float | None = None) -> list[MetricsPoint]:
        """Points newer than ``ts`` (wall-clock seconds), oldest first; all when ``None``."""
        with self._lock:
            if ts is None:
                return list(self._points)
            # Points are in time order: walk back from the newest until one is not newer.
            newer = []
            for point in reversed(self._points):
                if point.ts <= ts:
                    break
                newer.append(point)
        newer.reverse()
        return newer

    def latest(self) -> MetricsPoint | None:
        """The newest point, if any."""
        with self._lock:
            return self._points[-1] if self._points else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._points)
