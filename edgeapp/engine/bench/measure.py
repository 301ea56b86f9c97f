"""What one scenario measured: per-second samples of the running Engine, per-order figures
from its results store, folded into one :class:`ScenarioResult`.

Figures and their sources:

- orders/s, per-order latency avg / p50 / p95 / p99 (order end → verdict), success rate and
  verdict accuracy: every order whose verdict was stored inside the measured window, read
  back from the scenario's results store (not a rolling window);
- frames/s and frames dropped: the stations' own counters at the window's two ends (dropped
  = lost in the station's ring, refused by the Producer, dropped by its pacer) plus the frames
  the Producer's task queue dropped;
- CPU, memory, GPU and RSS: the Engine's metrics history (``Engine.metrics_history``, a point
  a second) over the window; GPU None where it cannot be measured (shown n/a, never 0); RSS
  is the sum over the engine's process, its stations and its local workers;
- SLO fulfilment: the share of sampled seconds with no CRITICAL SLO;
- quality: the mean over the seconds of the parameters' normalised levels (0 lowest, 1
  highest), as the controller benchmark counts it.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from edgeapp.engine.api import EngineStatus, MetricsPoint, SloState, StreamParameters
from edgeapp.engine.bench.scenarios import Scenario
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.metrics import percentiles
from edgeapp.engine.orders.result import OrderResult, OrderStatus


@dataclass(frozen=True)
class Counters:
    """The Engine's running counters at one moment (the ends of the measured window)."""

    wall: float
    frames: int
    dropped: int
    orders: int

    @classmethod
    def read(cls, status: EngineStatus) -> Counters:
        """From one status snapshot."""
        return cls(time.time(), sum(s.frames_processed for s in status.stations),
                   sum(s.frames_dropped for s in status.stations) + status.queues.tasks_dropped,
                   sum(status.orders.values()))


@dataclass(frozen=True)
class Sample:
    """One second of a scenario, as the live plot and the per-second series show it."""

    t_s: float                       # since the measured window began
    frames_per_s: float | None       # frames back from the workers in this second
    orders: int                      # verdicts since the window began
    cpu_percent: float | None
    memory_percent: float | None
    gpu_percent: float | None
    rss_mb: float | None
    critical: tuple[str, ...]        # SLOs CRITICAL at this second
    quality: float
    fps_level: int
    resolution_level: int
    grade: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report."""
        return dataclasses.asdict(self)


def rss_mb(point: MetricsPoint | None) -> float | None:
    """RSS of the engine's process, its stations and local workers, in MiB."""
    if point is None or not point.process_rss_mb:
        return None
    return round(sum(point.process_rss_mb.values()), 1)


def take_sample(status: EngineStatus, point: MetricsPoint | None, space: ParameterSpace,
                t_s: float, start: Counters, last: Counters, now: Counters) -> Sample:
    """One second's sample from a status snapshot, the newest metrics point and the
    counters around it."""
    p = status.parameters
    params = StreamParameters(p.fps_level, p.resolution_level, p.grade)
    elapsed = now.wall - last.wall
    return Sample(
        t_s=round(t_s, 2),
        frames_per_s=round((now.frames - last.frames) / elapsed, 2) if elapsed > 0 else None,
        orders=now.orders - start.orders,
        cpu_percent=status.system.cpu_percent, memory_percent=status.system.memory_percent,
        gpu_percent=status.system.gpu_percent, rss_mb=rss_mb(point),
        critical=tuple(s.name.value for s in status.slos if s.state is SloState.CRITICAL),
        quality=round(space.quality(params), 4), fps_level=p.fps_level,
        resolution_level=p.resolution_level, grade=p.grade.name.lower())


@dataclass
class ScenarioResult:
    """Everything one scenario measured (``None``: not measured, shown n/a)."""

    scenario: Scenario
    started_at: float | None = None        # wall clock, the measured window's start
    ended_at: float | None = None          # wall clock, its end (``duration_s`` is rounded)
    duration_s: float = 0.0                # the measured window (shorter when cancelled)
    warmup_s: float | None = None          # Engine start until the window began
    cancelled: bool = False
    error: str | None = None
    orders: int = 0
    orders_per_s: float | None = None
    frames: int = 0
    frames_per_s: float | None = None
    latency_avg_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None      # share of orders checked: validated or mismatch
    judged: int = 0                        # verdicts whose right answer is known
    correct: int = 0
    verdict_accuracy: float | None = None
    frames_dropped: int = 0
    slo_fulfilment: float | None = None    # share of seconds with no CRITICAL SLO
    slo_critical_s: dict[str, int] = field(default_factory=dict)
    cpu_avg: float | None = None
    cpu_max: float | None = None
    gpu_avg: float | None = None
    gpu_max: float | None = None
    memory_avg: float | None = None
    memory_max: float | None = None
    rss_max_mb: float | None = None
    quality: float | None = None           # mean normalised level over the seconds
    parameters_end: dict[str, Any] = field(default_factory=dict)
    results_db: str | None = None          # the scenario's results store, beside the report
    samples: list[Sample] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        """True once the window began (a cancelled scenario may still have figures)."""
        return self.started_at is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["scenario"] = self.scenario.to_dict()
        data["samples"] = [s.to_dict() for s in self.samples]
        return data


def fold(result: ScenarioResult, start: Counters, end: Counters,
         orders: list[OrderResult], points: list[MetricsPoint], end_status: EngineStatus
         ) -> None:
    """Fill ``result``'s figures from the window ``start`` → ``end``: the orders whose verdict
    fell inside it, the metrics points of it, its samples and the status at its end."""
    window = max(end.wall - start.wall, 1e-9)
    result.started_at, result.ended_at = start.wall, end.wall
    result.duration_s = round(window, 2)
    result.frames = end.frames - start.frames
    result.frames_per_s = round(result.frames / window, 3)
    result.frames_dropped = end.dropped - start.dropped
    _fold_orders(result, orders, window)
    samples = result.samples
    if samples:
        seconds = len(samples)
        result.slo_fulfilment = round(sum(not s.critical for s in samples) / seconds, 4)
        result.slo_critical_s = {name: sum(name in s.critical for s in samples)
                                 for name in sorted({n for s in samples for n in s.critical})}
        result.quality = round(statistics.mean(s.quality for s in samples), 4)
    inside = [p for p in points if start.wall < p.ts <= end.wall]
    result.cpu_avg, result.cpu_max = _avg_max([p.cpu_percent for p in inside])
    result.gpu_avg, result.gpu_max = _avg_max([p.gpu_percent for p in inside])
    result.memory_avg, result.memory_max = _avg_max([p.memory_percent for p in inside])
    rss = [r for r in map(rss_mb, inside) if r is not None]
    result.rss_max_mb = max(rss) if rss else None
    p = end_status.parameters
    result.parameters_end = {
        "fps_level": p.fps_level, "resolution_level": p.resolution_level,
        "grade": p.grade.name.lower(), "fps": p.fps, "resolution": p.resolution,
        "set_by": p.set_by.value}


def _fold_orders(result: ScenarioResult, orders: list[OrderResult], window: float) -> None:
    result.orders = len(orders)
    result.orders_per_s = round(len(orders) / window, 4)
    latencies = [o.latency_s for o in orders if o.latency_s is not None]
    if latencies:
        result.latency_avg_s = round(statistics.mean(latencies), 4)
        p50, p95, p99 = percentiles(latencies, 50, 95, 99)
        result.latency_p50_s, result.latency_p95_s, result.latency_p99_s = (
            round(v, 4) if v is not None else None for v in (p50, p95, p99))
    by_status = {s.value: 0 for s in OrderStatus}
    for order in orders:
        by_status[order.status.value] += 1
    result.by_status = by_status
    if orders:
        checked = by_status["validated"] + by_status["mismatch"]
        result.success_rate = round(checked / len(orders), 4)
    judged = [o for o in orders if o.truth_correct is not None]
    result.judged, result.correct = len(judged), sum(bool(o.truth_correct) for o in judged)
    result.verdict_accuracy = round(result.correct / result.judged, 4) if judged else None


def _avg_max(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return None, None
    return round(statistics.mean(known), 2), round(max(known), 2)
