"""The four service-level objectives, their OK / WARNING / CRITICAL states, and the monitor.

Each SLO is ``value <= limit``: CRITICAL above the limit, WARNING within ``warning_margin``
of it (``value >= limit * (1 - warning_margin)``), OK below that. An SLO never measured, or
whose limit cannot be set (the queue's, with no stream running), is OK with ``None`` in the
status: unknown, never invented. An SLO measured before but not in the latest sample (no
order ended in the interval) keeps its last value and state, marked not ``fresh``; only fresh
states reach the controllers as evidence.

The evidence is what the stream parameters can move. The order latency shown is every order's
(end → verdict); the controllers judge only its part that fewer or smaller frames can shorten
(``order_latency_streams_s``): an order that failed (VLM down, camera gone) or the answer time
of a VLM that does not share this machine's compute says nothing about frames.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from edgeapp.config.schema import SloConfig
from edgeapp.engine.api import Slo, SloChanged, SloState

#: SLO states as the controllers get them: only the SLOs measured in the latest sample.
SloStates = Mapping[Slo, SloState]


class _Whole(enum.Enum):
    WHOLE = "whole"


WHOLE = _Whole.WHOLE
"""``order_latency_streams_s=WHOLE``: all of the order latency is the streams' to move."""


@dataclass(frozen=True)
class MetricsSample:
    """One reading of what the SLOs watch; ``None`` where it was not measured."""

    queue_size: int | None = None
    fps: float | None = None  # summed over streams; the queue limit scales with it
    memory_percent: float | None = None
    frame_latency_p95_ms: float | None = None
    order_latency_s: float | None = None
    # Share of the machine's compute in use (0..1, can pass 1 when overloaded): not an SLO,
    # the leading indicator of what a step up would cost.
    utilisation: float | None = None
    # Frames that came back from the workers in the interval (None: not counted). None at
    # all: the streams deliver nothing, so no SLO says anything about the parameters.
    frames: int | None = None
    # Streams whose camera is away but may come back (reconnecting): their load is missing
    # from the figures, so the room they leave is not room to raise into.
    streams_away: int = 0
    # The worst order latency over the orders that ended in the interval, counting only what
    # the stream parameters can shorten (None: no such order).
    order_latency_streams_s: float | None | _Whole = WHOLE

    def __post_init__(self) -> None:
        if self.order_latency_streams_s is WHOLE:
            object.__setattr__(self, "order_latency_streams_s", self.order_latency_s)

    @property
    def frames_flow(self) -> bool:
        """False only when frames were counted and none came."""
        return self.frames is None or self.frames > 0


@dataclass(frozen=True)
class SloReading:
    """One SLO now: its value, its limit (``None`` when it cannot be set) and its state."""

    slo: Slo
    value: float | None
    limit: float | None
    state: SloState
    fresh: bool = False  # measured in the latest sample


def slo_state(value: float | None, limit: float | None, warning_margin: float) -> SloState:
    """The state of ``value <= limit``; OK when either is unknown."""
    if value is None or limit is None:
        return SloState.OK
    if value > limit:
        return SloState.CRITICAL
    if value >= limit * (1.0 - warning_margin):
        return SloState.WARNING
    return SloState.OK


def limits(config: SloConfig, sample: MetricsSample) -> dict[Slo, float | None]:
    """Each SLO's limit for ``sample``; the queue's follows the summed FPS."""
    # No FPS (no stream running, or not measured): a queue limit of 0 would call any leftover
    # frame CRITICAL, so the queue SLO is unknown instead.
    queue = config.queue_factor * sample.fps if sample.fps else None
    return {Slo.QUEUE: queue, Slo.MEMORY: config.memory_percent,
            Slo.FRAME_LATENCY: config.frame_latency_ms, Slo.ORDER_LATENCY: config.order_latency_s}


def values(sample: MetricsSample) -> dict[Slo, float | None]:
    """Each SLO's value in ``sample``."""
    queue = None if sample.queue_size is None else float(sample.queue_size)
    return {Slo.QUEUE: queue, Slo.MEMORY: sample.memory_percent,
            Slo.FRAME_LATENCY: sample.frame_latency_p95_ms,
            Slo.ORDER_LATENCY: sample.order_latency_s}


class SloMonitor:
    """Turns metric samples into SLO states and ``SloChanged`` events (not thread-safe)."""

    def __init__(self, config: SloConfig) -> None:
        self.config = config
        self._status = {slo: SloReading(slo, None, None, SloState.OK) for slo in Slo}
        self._evidence: dict[Slo, SloState] = {}

    @property
    def status(self) -> tuple[SloReading, ...]:
        """Every SLO's latest value, limit and state."""
        return tuple(self._status.values())

    @property
    def states(self) -> dict[Slo, SloState]:
        """Every SLO's latest state (OK where unknown)."""
        return {slo: s.state for slo, s in self._status.items()}

    @property
    def measured(self) -> dict[Slo, SloState]:
        """The controllers' evidence: the state of each SLO measured in the latest sample
        (value and limit known), the order latency's only for its part the streams move."""
        return dict(self._evidence)

    def update(self, sample: MetricsSample) -> list[SloChanged]:
        """Take ``sample``; return an event for each SLO whose state changed."""
        events = []
        lims, vals = limits(self.config, sample), values(sample)
        for slo in Slo:
            before = self._status[slo]
            if vals[slo] is None and lims[slo] is not None:  # not measured this time: hold
                self._status[slo] = SloReading(slo, before.value, lims[slo], before.state, False)
                continue
            state = slo_state(vals[slo], lims[slo], self.config.warning_margin)
            self._status[slo] = SloReading(slo, vals[slo], lims[slo], state, True)
            if state != before.state:
                events.append(SloChanged(slo, before.state, state, vals[slo], lims[slo]))
        self._evidence = {slo: s.state for slo, s in self._status.items()
                          if s.fresh and s.value is not None and s.limit is not None}
        if Slo.ORDER_LATENCY in self._evidence:
            movable = sample.order_latency_streams_s
            assert not isinstance(movable, _Whole)  # resolved in __post_init__
            if movable is None:
                del self._evidence[Slo.ORDER_LATENCY]
            else:
                self._evidence[Slo.ORDER_LATENCY] = slo_state(
                    movable, lims[Slo.ORDER_LATENCY], self.config.warning_margin)
        return events
