"""The Producer's bounded, thread-safe task queue, fed by any number of streams.

Tasks leave oldest-first across streams (by submission order), so a task handed back after a
lost lease — it keeps its place in that order — goes out before anything newer. When the
queue is full, the oldest task of the most-behind stream (the one with most tasks queued) is
dropped and counted for that stream: that stream is the one least able to stay real time, and
its oldest frame is the one least worth showing late.
"""

from __future__ import annotations

import bisect
import collections
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Task:
    """One frame to detect: where it is from, the image, and how often it was handed out."""

    id: int
    stream_key: str
    seq: int
    capture_ts: float
    image: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    order: int = 0
    attempts: int = 0


class TaskQueue:
    """Per-stream FIFOs with a shared size bound and the drop policy above."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._streams: dict[str, collections.deque[Task]] = {}
        self._size = 0
        self._order = 0
        self._dropped: collections.Counter[str] = collections.Counter()

    def put(self, task: Task) -> list[Task]:
        """Queue ``task`` (stamping its order); return the tasks dropped to make room."""
        with self._lock:
            self._order += 1
            task.order = self._order
            self._streams.setdefault(task.stream_key, collections.deque()).append(task)
            self._size += 1
            return self._trim()

    def requeue(self, tasks: list[Task]) -> list[Task]:
        """Put handed-out tasks back at their old place (the front); return those dropped."""
        with self._lock:
            for task in tasks:
                queue = self._streams.setdefault(task.stream_key, collections.deque())
                if not queue or queue[-1].order < task.order:
                    queue.append(task)
                else:  # usually index 0: lost tasks are older than anything queued
                    orders = [t.order for t in queue]
                    queue.insert(bisect.bisect_left(orders, task.order), task)
                self._size += 1
            return self._trim()

    def pop(self, n: int) -> list[Task]:
        """Up to ``n`` tasks, oldest first across all streams; never blocks."""
        out: list[Task] = []
        with self._lock:
            while len(out) < n and self._size:
                key = min((k for k, q in self._streams.items() if q),
                          key=lambda k: self._streams[k][0].order)
                out.append(self._streams[key].popleft())
                self._size -= 1
                if not self._streams[key]:
                    del self._streams[key]
        return out

    def clear(self) -> list[Task]:
        """Remove and return every queued task (not counted as dropped)."""
        with self._lock:
            tasks = sorted((t for q in self._streams.values() for t in q), key=lambda t: t.order)
            self._streams.clear()
            self._size = 0
            return tasks

    def __len__(self) -> int:
        return self._size

    def sizes(self) -> dict[str, int]:
        """Queued tasks per stream."""
        with self._lock:
            return {k: len(q) for k, q in self._streams.items()}

    def dropped(self) -> dict[str, int]:
        """Tasks dropped because the queue was full, per stream."""
        with self._lock:
            return dict(self._dropped)

    def _trim(self) -> list[Task]:
        dropped: list[Task] = []
        while self._size > self.maxsize:
            key = max(self._streams, key=lambda k: (len(self._streams[k]),
                                                     -self._streams[k][0].order))
            task = self._streams[key].popleft()
            if not self._streams[key]:
                del self._streams[key]
            self._size -= 1
            self._dropped[key] += 1
            dropped.append(task)
        return dropped
