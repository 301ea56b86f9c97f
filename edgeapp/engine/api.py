"""What the engine's clients see: status snapshots, events, states, the latest frame.

One module, one contract (DESIGN §4): the window, ``--headless``, the benchmarks and the tests
read only these types. Every snapshot is a frozen dataclass with ``to_dict()`` (plain data for
``--json`` and Prometheus); a figure that cannot be measured is ``None``, never 0.

Parts emit these types; the engine facade (``edgeapp.engine.engine.Engine``) returns them.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import EdgeAppError

__all__ = [
    "CameraState", "ControlStatus", "EngineEvent", "EngineStatus", "Grade", "IllegalTransition",
    "LatestFrame", "MetricsPoint", "Notification", "OrderResult", "OrderStatus", "OrderValidated",
    "ParametersChanged", "ParametersStatus", "QueueStatus", "ScalingAction", "ScalingDecision",
    "SetBy", "Severity", "Slo", "SloChanged", "SloState", "SloStatus", "StationState",
    "StationStateChanged", "StationStatus", "StreamParameters", "SystemStatus", "WorkerJoined",
    "WorkerLeft", "WorkerStatus",
]


# ── states ───────────────────────────────────────────────────────────────────────────────────


class IllegalTransition(EdgeAppError):
    """A state machine was asked for a transition it does not allow (a bug in the caller)."""

    exit_code = 70


class StationState(str, enum.Enum):
    """A station's lifecycle, as the pool runs it (its camera has a state of its own)."""

    STARTING = "starting"      # process spawned, not yet serving frames
    RUNNING = "running"        # serving (whatever its camera does)
    DRAINING = "draining"      # asked to leave: finishes the order on its counter first
    RESTARTING = "restarting"  # crashed; waits its backoff, then starts again
    CRASHED = "crashed"        # crashed too often in the window: stays down
    OFFLINE = "offline"        # a remote station went silent or left; back when it speaks
    STOPPED = "stopped"        # ended on purpose

    def can_become(self, new: StationState) -> bool:
        """Whether ``self -> new`` is an allowed transition."""
        return new in _STATION_TRANSITIONS[self]

    def check(self, new: StationState) -> StationState:
        """``new`` if ``self -> new`` is allowed; else ``IllegalTransition``."""
        if not self.can_become(new):
            raise IllegalTransition(f"station state {self.value} cannot become {new.value}")
        return new


_S = StationState
_STATION_TRANSITIONS: dict[StationState, frozenset[StationState]] = {
    _S.STARTING: frozenset({_S.RUNNING, _S.DRAINING, _S.RESTARTING, _S.CRASHED, _S.STOPPED,
                            _S.OFFLINE}),
    _S.RUNNING: frozenset({_S.DRAINING, _S.RESTARTING, _S.CRASHED, _S.STOPPED, _S.OFFLINE}),
    _S.DRAINING: frozenset({_S.STOPPED, _S.CRASHED, _S.OFFLINE}),
    _S.RESTARTING: frozenset({_S.STARTING, _S.STOPPED, _S.CRASHED}),
    _S.CRASHED: frozenset({_S.STARTING}),  # only an operator's explicit add brings it back
    _S.STOPPED: frozenset({_S.STARTING}),
    _S.OFFLINE: frozenset({_S.STARTING, _S.STOPPED}),
}


class CameraState(str, enum.Enum):
    """A station's camera, as its source reports it (DESIGN: the UI shows exactly this)."""

    CONNECTING = "connecting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    ENDED = "ended"

    @property
    def live(self) -> bool:
        """True only when frames flow; every other state must not look live in a tile."""
        return self is CameraState.RUNNING


class Severity(enum.IntEnum):
    """How much a notification matters (ordered: ``>=`` compares)."""

    INFO = 0
    WARNING = 1
    ERROR = 2


class SetBy(str, enum.Enum):
    """Who set the stream parameters in force (or the station count)."""

    CONFIG = "config"
    CONTROLLER = "controller"
    OPERATOR = "operator"
    AUTOSCALER = "autoscaler"


class SloState(enum.IntEnum):
    """How an SLO stands; the values are the AIF agent's observation indices."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


class Slo(str, enum.Enum):
    """The SLOs the controller keeps."""

    QUEUE = "queue"
    MEMORY = "memory"
    FRAME_LATENCY = "frame_latency"
    ORDER_LATENCY = "order_latency"


@dataclass(frozen=True)
class StreamParameters:
    """What every stream runs at, as levels: FPS and resolution indices (0 = highest), grade."""

    fps_level: int
    resolution_level: int
    grade: Grade


class ScalingAction(str, enum.Enum):
    """What the autoscaler (or the operator) did to the number of stations."""

    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    HOLD = "hold"


# ── snapshots (status()) ─────────────────────────────────────────────────────────────────────


class _Plain:
    """``to_dict()`` for the frozen snapshots: enums as their values, nested as dicts."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, _Plain):
        return value.to_dict()
    if isinstance(value, Severity):
        return value.name.lower()
    if isinstance(value, SloState):
        return value.name
    if isinstance(value, Grade):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class StationStatus(_Plain):
    """One station: lifecycle, camera, rates, current order."""

    name: str
    state: StationState
    camera: CameraState | None       # None until the camera reports
    reason: str                      # why it is in this state, in words
    source: str                      # what it watches (URL, file, synthetic)
    pid: int | None
    fps_in: float | None             # frames/s leaving the pacer
    fps_out: float | None            # frames/s with detections back
    frame_age_s: float | None        # how old the newest frame is
    frame_latency_p50_s: float | None
    frame_latency_p95_s: float | None
    frames_in: int                   # counted since start
    frames_processed: int
    frames_dropped: int
    current_order: str | None
    restarts: int
    remote: bool = False             # runs on another machine (Redis backend)


@dataclass(frozen=True)
class WorkerStatus(_Plain):
    """One inference worker as the Producer sees it."""

    worker_id: str
    name: str
    host: str
    pid: int | None
    grade: Grade | None
    tasks_per_s: float | None
    tasks_done: int
    leased: int
    last_seen_s: float | None
    local: bool
    state: str                       # "active" / "silent"


@dataclass(frozen=True)
class SloStatus(_Plain):
    """One SLO: its value against its limit."""

    name: Slo
    value: float | None
    limit: float | None
    state: SloState


@dataclass(frozen=True)
class ParametersStatus(_Plain):
    """The stream parameters in force, as levels and as fractions, and who set them."""

    fps_level: int
    resolution_level: int
    grade: Grade
    fps: float                       # fraction of each camera's own rate
    resolution: float                # fraction of each camera's own size
    fps_levels: tuple[float, ...]
    resolution_levels: tuple[float, ...]
    grades: tuple[Grade, ...]        # the grades with a model of their own
    set_by: SetBy
    reason: str
    override: dict[str, int]         # parameter name -> pinned level


@dataclass(frozen=True)
class QueueStatus(_Plain):
    """Queue depths along the data path."""

    tasks: int
    tasks_leased: int
    tasks_dropped: int
    vlm_queue: int
    vlm_in_flight: int
    events_dropped: int


@dataclass(frozen=True)
class SystemStatus(_Plain):
    """Machine load; GPU is None where it cannot be measured (shown as n/a)."""

    cpu_percent: float | None
    memory_percent: float | None
    gpu_percent: float | None
    gpu_memory_percent: float | None


@dataclass(frozen=True)
class ControlStatus(_Plain):
    """The controller and the autoscaler."""

    controller: str                  # aif / heuristic / static
    ready: bool
    decisions: int
    at_lowest: bool
    step_ms_p99: float | None
    autoscaling: bool
    min_stations: int
    max_stations: int


@dataclass(frozen=True)
class EngineStatus(_Plain):
    """Everything a client shows, at one moment."""

    running: bool
    uptime_s: float | None
    stations: tuple[StationStatus, ...]
    workers: tuple[WorkerStatus, ...]
    slos: tuple[SloStatus, ...]
    parameters: ParametersStatus
    control: ControlStatus
    queues: QueueStatus
    system: SystemStatus
    fps: float | None                # frames/s with detections, all stations
    order_latency_p50_s: float | None
    order_latency_p95_s: float | None
    frame_latency_p95_s: float | None
    orders: dict[str, int]           # by status value

    def station(self, name: str) -> StationStatus | None:
        """The station called ``name``, if any."""
        return next((s for s in self.stations if s.name == name), None)


@dataclass(frozen=True)
class MetricsPoint(_Plain):
    """One sample of the metrics history (``Engine.metrics_history``), about one a second."""

    ts: float                        # wall-clock seconds
    cpu_percent: float | None        # machine
    memory_percent: float | None
    gpu_percent: float | None        # None: not measured on this machine
    gpu_memory_percent: float | None
    process_cpu_percent: dict[str, float]  # engine / station name / worker id -> percent
    process_rss_mb: dict[str, float]
    fps_in: dict[str, float | None]        # per station
    fps_processed: dict[str, float | None]
    frames_dropped: dict[str, int]         # per station, counted since start
    orders_per_min: float | None
    order_latency_p95_s: float | None      # true per-order percentile over the last minute
    task_queue: int
    tasks_leased: int
    vlm_queue: int
    vlm_in_flight: int
    events_dropped: int
    stations_running: int


@dataclass(frozen=True)
class LatestFrame:
    """A station's newest frame (a copy the client owns) and the newest detections it has."""

    station: str
    seq: int
    capture_ts: float                # wall-clock seconds (time.time()) of the capture
    image: np.ndarray                # BGR uint8, H x W x 3
    detections: np.ndarray | None    # (N, 6) x1, y1, x2, y2, score, class in image pixels
    detections_seq: int | None

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the capture."""
        return max(0.0, (time.time() if now is None else now) - self.capture_ts)


# ── events (subscribe()) ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ParametersChanged:
    """The stream parameters changed; ``source`` says who changed them and ``reason`` why."""

    old: StreamParameters
    new: StreamParameters
    source: SetBy
    reason: str


@dataclass(frozen=True)
class SloChanged:
    """An SLO changed state."""

    name: Slo
    old: SloState
    new: SloState
    value: float | None
    limit: float | None


@dataclass(frozen=True)
class WorkerJoined:
    """A worker registered with the Producer."""

    worker_id: str
    name: str
    host: str


@dataclass(frozen=True)
class WorkerLeft:
    """A worker left: ``reason`` is ``end``, ``silent`` (no sign of life), ``replaced``,
    ``unreachable`` or ``revoked`` (its key was withdrawn); ``requeued`` is how many of its
    tasks went back to the queue."""

    worker_id: str
    name: str
    reason: str
    requeued: int


@dataclass(frozen=True)
class OrderValidated:
    """An order has its verdict (any status, ``failed`` and ``unreadable`` included)."""

    result: OrderResult


@dataclass(frozen=True)
class StationStateChanged:
    """A station's lifecycle state or its camera's state changed (``old is new`` when only
    the camera did; a station added for the first time comes from STOPPED)."""

    station: str
    old: StationState
    new: StationState
    camera: CameraState | None
    reason: str
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ScalingDecision:
    """The autoscaler (or the operator) changed, or chose to hold, the number of stations."""

    ts: float                        # wall-clock seconds
    old_count: int
    new_count: int
    action: ScalingAction
    reason: str                      # in words, e.g. "CPU 42 % < 80 % for 30 s"
    by: SetBy                        # AUTOSCALER or OPERATOR
    metrics: dict[str, float | None]  # the figures that decided: cpu, gpu, order latency …
    station: str | None = None       # the station added or removed

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the results store and ``--json``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalingDecision:
        """The decision ``to_dict`` made."""
        return cls(float(data["ts"]), int(data["old_count"]), int(data["new_count"]),
                   ScalingAction(data["action"]), str(data["reason"]), SetBy(data["by"]),
                   dict(data["metrics"]), data.get("station"))


@dataclass(frozen=True)
class Notification:
    """Something the operator should see; ``part`` names who says it (station-1, VLM …)."""

    severity: Severity
    text: str
    part: str = "engine"
    ts: float = field(default_factory=time.time)


EngineEvent = (OrderValidated | ParametersChanged | SloChanged | StationStateChanged
               | ScalingDecision | Notification | WorkerJoined | WorkerLeft)
