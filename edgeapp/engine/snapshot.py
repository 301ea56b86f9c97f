"""Builds the typed snapshots of ``Engine.status()`` from what each part reports."""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from edgeapp.engine.api import (
    ParametersStatus,
    SetBy,
    SloStatus,
    StationStatus,
    WorkerStatus,
)
from edgeapp.engine.control.loop import ControlLoop
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.sources.stream import redact
from edgeapp.engine.vision.grades import Grade

if TYPE_CHECKING:
    from edgeapp.engine.stations.hub import StationLink

_HOST = socket.gethostname()
_RATE_WINDOW_S = 5.0


def station_status(link: StationLink, now_wall: float) -> StationStatus:
    """One station as clients see it."""
    stats = link.stats
    p50, p95 = link.frame_latency.percentiles(50, 95)
    last = stats.last_capture_ts if stats is not None else None
    return StationStatus(
        name=link.name, state=link.state, camera=link.camera, reason=link.reason,
        source=redact(link.proc.settings.source),
        pid=link.proc.process.pid if not link.ended else None,
        fps_in=link.fps_in, fps_out=link.detected.rate(),
        frame_age_s=None if last is None else max(0.0, now_wall - last),
        frame_latency_p50_s=p50, frame_latency_p95_s=p95,
        frames_in=stats.frames_in if stats is not None else 0,
        frames_processed=link.frames_processed,
        frames_dropped=link.frames_lost + link.frames_refused + link.proc.dropped,
        current_order=link.order_id if link.busy else None, restarts=link.restarts)


class WorkerRates:
    """Tasks per second of each worker, from its ``tasks_done`` counter over ~5 s."""

    def __init__(self) -> None:
        self._seen: dict[str, collections.deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def update(self, workers: Iterable[Mapping[str, Any]], now: float | None = None) -> None:
        """Record each worker's ``tasks_done`` now (the monitor calls this twice a second)."""
        t = time.monotonic() if now is None else now
        with self._lock:
            alive = set()
            for w in workers:
                alive.add(w["id"])
                seen = self._seen.setdefault(w["id"], collections.deque())
                seen.append((t, int(w["tasks_done"])))
                while len(seen) > 2 and t - seen[1][0] >= _RATE_WINDOW_S:
                    seen.popleft()
            for gone in set(self._seen) - alive:
                del self._seen[gone]

    def rate(self, worker_id: str) -> float | None:
        """Tasks per second over the window; None before two readings."""
        with self._lock:
            seen = self._seen.get(worker_id)
            if not seen or len(seen) < 2 or seen[-1][0] <= seen[0][0]:
                return None
            return (seen[-1][1] - seen[0][1]) / (seen[-1][0] - seen[0][0])


def worker_status(w: Mapping[str, Any], rates: WorkerRates, local_pids: set[int],
                  silent_after_s: float) -> WorkerStatus:
    """One worker from the Producer's plain-data record."""
    last_seen = w.get("last_seen_s")
    grade = w.get("grade")
    return WorkerStatus(
        worker_id=w["id"], name=w["name"], host=w["host"], pid=w.get("pid"),
        grade=None if grade is None else Grade(grade), tasks_per_s=rates.rate(w["id"]),
        tasks_done=int(w.get("tasks_done", 0)), leased=int(w.get("leased", 0)),
        last_seen_s=last_seen,
        local=w.get("host") == _HOST and w.get("pid") in local_pids,
        state="silent" if last_seen is not None and last_seen > silent_after_s else "active")


def parameters_status(control: ControlLoop, space: ParameterSpace) -> ParametersStatus:
    """The stream parameters in force and who set them."""
    params, override = control.elasticity.parameters, control.elasticity.override
    change = control.last_change
    set_by = SetBy.OPERATOR if override else change.source if change is not None \
        else SetBy.CONFIG
    return ParametersStatus(
        fps_level=params.fps_level, resolution_level=params.resolution_level,
        grade=params.grade, fps=space.fps_fraction(params),
        resolution=space.resolution_scale(params), fps_levels=space.fps_levels,
        resolution_levels=space.resolution_levels, grades=space.grades, set_by=set_by,
        reason=change.reason if change is not None else "start",
        override={k: int(v) for k, v in override.items()})


def slo_statuses(control: ControlLoop) -> tuple[SloStatus, ...]:
    """Every SLO's value, limit and state."""
    return tuple(SloStatus(r.slo, r.value, r.limit, r.state)
                 for r in control.elasticity.slo_status)
