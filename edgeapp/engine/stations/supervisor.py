"""Restarts for the engine's children: stations and local workers, one policy for both.

A child that ends unasked is restarted after a backoff that doubles (1, 2, 4 … up to
``backoff_max_s``); after ``max_crashes`` ends within ``window_s`` it is given up (a station
becomes CRASHED and stays so, a worker stays down) and the operator is told.
:class:`CrashHistory` is the pure policy; :class:`WorkerSupervisor` applies it to the local
worker processes (stations: :mod:`edgeapp.engine.stations.pool`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeapp.engine.api import EngineEvent, Notification, Severity

if TYPE_CHECKING:
    from edgeapp.engine.distributed.local_workers import LocalWorkers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff ``first_s`` doubling up to ``backoff_max_s``; give up after ``max_crashes``
    crashes within ``window_s`` seconds."""

    first_s: float = 1.0
    backoff_max_s: float = 30.0
    max_crashes: int = 5
    window_s: float = 300.0


class CrashHistory:
    """One child's crashes: when to restart it, or that it is given up (not thread-safe)."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: collections.deque[float] = collections.deque()

    def crashed(self, now: float) -> float | None:
        """Record a crash at ``now``; the seconds to wait before the restart, or None when
        it crashed ``max_crashes`` times in the window (give up)."""
        p = self.policy
        self._times.append(now)
        while self._times and now - self._times[0] > p.window_s:
            self._times.popleft()
        count = len(self._times)
        if count >= p.max_crashes:
            return None
        return min(p.backoff_max_s, p.first_s * 2 ** (count - 1))

    @property
    def count(self) -> int:
        """Crashes within the window (as of the last one)."""
        return len(self._times)


class WorkerSupervisor:
    """Restarts local worker processes that end unasked, with the same policy as stations.

    ``tick()`` is called by the pool thread a few times a second; the worker handles it uses
    are owned by :class:`LocalWorkers`."""

    def __init__(self, workers: LocalWorkers, policy: RestartPolicy,
                 publish: Callable[[EngineEvent], None]) -> None:
        self._workers = workers
        self._policy = policy
        self._publish = publish
        self._history: dict[int, CrashHistory] = {}
        self._due: dict[int, float] = {}  # worker index -> monotonic restart time

    def tick(self, now: float | None = None) -> None:
        """Notice ended workers, schedule their restart, restart those that are due."""
        t = time.monotonic() if now is None else now
        for ended in self._workers.poll():
            history = self._history.setdefault(ended.index, CrashHistory(self._policy))
            delay = history.crashed(t)
            what = (f"local worker {ended.index} (pid {ended.pid}) ended with code "
                    f"{ended.returncode}")
            if delay is None:
                self._publish(Notification(
                    Severity.ERROR, f"{what}: {history.count} times in "
                                    f"{self._policy.window_s:.0f} s, not restarted. "
                                    f"{ended.stderr_tail[-300:]}", "workers"))
                continue
            self._due[ended.index] = t + delay
            self._publish(Notification(
                Severity.ERROR, f"{what}; restarting it in {delay:.0f} s. "
                                f"{ended.stderr_tail[-300:]}", "workers"))
        for index, at in list(self._due.items()):
            if at <= t:
                del self._due[index]
                pid = self._workers.restart(index)
                self._publish(Notification(Severity.INFO,
                                           f"local worker {index} restarted (pid {pid})",
                                           "workers"))

    def next_due(self) -> float | None:
        """The monotonic time of the next restart (None: none due)."""
        return min(self._due.values(), default=None)
