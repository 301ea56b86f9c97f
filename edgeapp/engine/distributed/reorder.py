"""Putting one stream's results back in frame order, with a bounded wait and bounded memory.

Rules, per stream:
- ``last`` is the highest seq already released or skipped. A result at or below it is a
  duplicate (or *late*, if its frame was skipped) and is dropped: dedupe needs no per-frame
  history, only ``last`` plus a small window of recent skips for the counters.
- A result is released once no *expected* frame (queued at the Producer, not cancelled, not
  arrived) comes before it.
- When the oldest held-back result has waited ``timeout_s``, every expected frame before it is
  skipped (counted) and it is released. So no result is held longer than ``timeout_s``, and
  the caller can sleep exactly until :meth:`StreamReorder.next_deadline`.
- At most ``max_pending`` frames are expected and at most ``max_pending`` results held: past
  that, the oldest is given up on early (counted as skipped).
"""

from __future__ import annotations

import collections
import heapq
from typing import Any


class StreamReorder:
    """Reorder buffer of one stream; not thread-safe (the Collector holds a lock)."""

    def __init__(self, timeout_s: float, max_pending: int = 1024) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.last = -1
        self._expected: set[int] = set()
        self._expected_heap: list[int] = []
        self._ready: dict[int, tuple[float, Any]] = {}
        self._ready_heap: list[int] = []
        self._arrivals: collections.deque[tuple[float, int]] = collections.deque()
        self._recent_skips: collections.deque[int] = collections.deque(maxlen=256)
        self._force_until = -1
        self.counts = collections.Counter({"released": 0, "duplicate": 0, "late": 0,
                                           "skipped": 0})

    def expect(self, seq: int) -> None:
        """Frame ``seq`` is on its way."""
        if seq > self.last and seq not in self._expected and seq not in self._ready:
            self._expected.add(seq)
            heapq.heappush(self._expected_heap, seq)
            if len(self._expected) > self.max_pending:
                oldest = self._head_expected()
                assert oldest is not None
                if self._ready_heap and self._ready_heap[0] < oldest:
                    self._force_until = max(self._force_until, oldest + 1)  # in pop_ready
                else:
                    self._skip(oldest)

    def cancel(self, seq: int) -> None:
        """Frame ``seq`` will not come."""
        self._expected.discard(seq)

    def add(self, seq: int, item: Any, now: float) -> bool:
        """Hold result ``seq``; False (and counted) when it is a duplicate or too late."""
        if seq <= self.last or seq in self._ready:
            self.counts["late" if seq in self._recent_skips else "duplicate"] += 1
            return False
        self._expected.discard(seq)
        self._ready[seq] = (now, item)
        heapq.heappush(self._ready_heap, seq)
        self._arrivals.append((now, seq))
        return True

    def pop_ready(self, now: float) -> list[tuple[int, Any]]:
        """Results that may go out now, in seq order (skipping frames waited for too long)."""
        out: list[tuple[int, Any]] = []
        while self._ready_heap:
            head = self._ready_heap[0]
            missing = self._head_expected()
            if missing is None or head < missing:
                heapq.heappop(self._ready_heap)
                out.append((head, self._ready.pop(head)[1]))
                self.last = head
                self.counts["released"] += 1
                continue
            if missing < self._force_until:
                self._skip(missing)
                continue
            oldest = self._oldest_waiting()
            if now >= oldest[0] + self.timeout_s or len(self._ready) > self.max_pending:
                self._force_until = oldest[1]
                continue
            break
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`pop_ready` could release something without new input (None: never)."""
        if not self._ready_heap:
            return None
        return self._oldest_waiting()[0] + self.timeout_s

    def flush(self) -> list[tuple[int, Any]]:
        """Release everything held, skipping whatever is still missing (at stop)."""
        self._force_until = max(self._ready, default=-1) + 1
        return self.pop_ready(float("inf"))

    def pending(self) -> tuple[int, int]:
        """(frames expected, results held back)."""
        return len(self._expected), len(self._ready)

    def _head_expected(self) -> int | None:
        heap = self._expected_heap
        while heap and (heap[0] not in self._expected or heap[0] <= self.last):
            self._expected.discard(heapq.heappop(heap))
        return heap[0] if heap else None

    def _oldest_waiting(self) -> tuple[float, int]:
        while self._arrivals[0][1] not in self._ready:
            self._arrivals.popleft()
        return self._arrivals[0]

    def _skip(self, seq: int) -> None:
        self._expected.discard(seq)
        self._recent_skips.append(seq)
        self.last = max(self.last, seq)
        self.counts["skipped"] += 1
