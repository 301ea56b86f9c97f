"""Builds the typed snapshots of ``Engine.status()`` from what each part reports."""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from edgeapp.engine.api import (
    ControlStatus,
    ParametersStatus,
    QueueStatus,
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
    from edgeapp.engine.distributed.local_workers import LocalWorkers
    from edgeapp.engine.distributed.producer import Producer
    from edgeapp.engine.stations.autoscaler import Autoscaler
    from edgeapp.engine.stations.record import StationRecord
    from edgeapp.engine.vlm.batcher import VlmBatcher

_HOST = socket.gethostname()
_RATE_WINDOW_S = 5.0


def station_status(record: StationRecord, now_wall: float) -> StationStatus:
    """One station as clients see it."""
    stats, channel = record.stats, record.channel
    p50, p95 = record.frame_latency.percentiles(50, 95)
    last = stats.last_capture_ts if stats is not None else None
    return StationStatus(
        name=record.name, state=record.state, camera=record.camera, reason=record.reason,
        source=redact(record.config.source), pid=channel.pid if channel is not None else None,
        fps_in=record.fps_in if channel is not None else None,
        fps_out=record.detected.rate() if channel is not None else None,
        frame_age_s=None if last is None or channel is None else max(0.0, now_wall - last),
        frame_latency_p50_s=p50, frame_latency_p95_s=p95, frames_in=record.frames_in,
        frames_processed=record.frames_processed,
        frames_dropped=record.frames_lost + record.frames_refused + record.detections_dropped,
        current_order=record.order_id if record.busy else None, restarts=record.restarts,
        remote=record.config.remote or (channel is not None and channel.remote))


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


def worker_statuses(producer_status: Mapping[str, Any], producer: Producer | None,
                    local: LocalWorkers | None, rates: WorkerRates) -> tuple[WorkerStatus, ...]:
    """Every worker the Producer knows."""
    local_pids = set(local.pids().values()) if local is not None else set()
    # Silent: no request for two heartbeats (the Producer drops it after ``liveness``).
    silent_after = 2 * producer.settings.heartbeat_s if producer is not None else 1.0
    return tuple(worker_status(w, rates, local_pids, silent_after)
                 for w in producer_status.get("workers", []))


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


def control_status(control: ControlLoop, scaler: Autoscaler) -> ControlStatus:
    """The controller and the autoscaler."""
    (step_p99,) = control.step_time.percentiles(99)
    return ControlStatus(
        controller=control.kind, ready=control.ready, decisions=control.decisions,
        at_lowest=control.elasticity.at_lowest,
        step_ms_p99=None if step_p99 is None else step_p99 * 1000.0,
        autoscaling=scaler.enabled, min_stations=scaler.policy.min_stations,
        max_stations=scaler.policy.max_stations)


def queue_status(producer_status: Mapping[str, Any], batcher: VlmBatcher | None,
                 events_dropped: int) -> QueueStatus:
    """Queue depths along the data path."""
    p, vlm = producer_status, batcher.stats() if batcher is not None else None
    return QueueStatus(
        tasks=p.get("queue_size", 0), tasks_leased=p.get("leased", 0),
        tasks_dropped=sum(p.get("dropped", {}).values()),
        vlm_queue=vlm.queue_depth if vlm else 0,
        vlm_in_flight=vlm.in_flight_requests if vlm else 0, events_dropped=events_dropped)


def slo_statuses(control: ControlLoop) -> tuple[SloStatus, ...]:
    """Every SLO's value, limit and state."""
    return tuple(SloStatus(r.slo, r.value, r.limit, r.state)
                 for r in control.elasticity.slo_status)
