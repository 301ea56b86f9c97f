"""The station autoscaler: the seed's scaling policy, done right, and its wiring.

:class:`ScalingPolicy` is pure (time and metrics in, a decision out): it scales up only when
CPU < ``scale_up_cpu_threshold``, GPU < ``scale_up_gpu_threshold`` (or GPU not measured) and
order latency < ``scale_up_latency_threshold``; it scales down when CPU, GPU or latency pass
their ``scale_down_*`` thresholds. A condition must hold for ``hysteresis_window`` seconds on
every look, and after an action the window starts again. Scaling down is the last resort:
only when the quality controller is at its lowest settings or off, and never in the same
window as a controller step down. A decision it cannot act on (at ``max_stations``, no source
left, the controller can still lower quality) is a HOLD, said once.

:class:`Autoscaler` runs the policy on the control thread after each controller decision,
adds the next configured source (the demo: one more synthetic camera) or drains the newest
station, and keeps every decision in ``history()`` and in the results store.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from edgeapp.config import ScalingConfig, StationConfig
from edgeapp.engine.api import (
    EngineEvent,
    Notification,
    ScalingAction,
    ScalingDecision,
    SetBy,
    Severity,
)
from edgeapp.errors import InputError

logger = logging.getLogger(__name__)

_HISTORY = 1000


@dataclass(frozen=True)
class ScalingMetrics:
    """What the policy looks at; None where not measured (GPU n/a: never invented)."""

    cpu_percent: float | None
    gpu_percent: float | None
    order_latency_s: float | None

    def as_dict(self, stations: int) -> dict[str, float | None]:
        """The figures a decision keeps."""
        return {"cpu_percent": self.cpu_percent, "gpu_percent": self.gpu_percent,
                "order_latency_p95_s": self.order_latency_s, "stations": float(stations)}


@dataclass(frozen=True)
class Verdict:
    """What the policy decided, and why (in words)."""

    action: ScalingAction
    reason: str


class ScalingPolicy:
    """The scaling rules over time; not thread-safe (the control thread owns it)."""

    def __init__(self, config: ScalingConfig) -> None:
        self.config = config
        self.min_stations, self.max_stations = config.min_stations, config.max_stations
        self._up_since: float | None = None
        self._down_since: float | None = None
        self._held: str | None = None  # the HOLD said since the last action (said once)

    def set_bounds(self, min_stations: int, max_stations: int) -> None:
        """New station bounds (checked by the caller)."""
        self.min_stations, self.max_stations = min_stations, max_stations

    def up_reason(self, m: ScalingMetrics) -> str | None:
        """Why there is room for one more station, or None when there is not."""
        c = self.config
        if m.cpu_percent is None or m.cpu_percent >= c.scale_up_cpu_threshold:
            return None
        if m.gpu_percent is not None and m.gpu_percent >= c.scale_up_gpu_threshold:
            return None
        if m.order_latency_s is not None and m.order_latency_s >= c.scale_up_latency_threshold:
            return None
        gpu = "GPU n/a" if m.gpu_percent is None else \
            f"GPU {m.gpu_percent:.0f} % < {c.scale_up_gpu_threshold:.0f} %"
        lat = "no order latency yet" if m.order_latency_s is None else \
            f"order latency {m.order_latency_s:.1f} s < {c.scale_up_latency_threshold:.1f} s"
        return f"CPU {m.cpu_percent:.0f} % < {c.scale_up_cpu_threshold:.0f} %, {gpu}, {lat}"

    def down_reason(self, m: ScalingMetrics) -> str | None:
        """Why the machine is overloaded, or None when it is not."""
        c = self.config
        why = []
        if m.cpu_percent is not None and m.cpu_percent > c.scale_down_cpu_threshold:
            why.append(f"CPU {m.cpu_percent:.0f} % > {c.scale_down_cpu_threshold:.0f} %")
        if m.gpu_percent is not None and m.gpu_percent > c.scale_down_gpu_threshold:
            why.append(f"GPU {m.gpu_percent:.0f} % > {c.scale_down_gpu_threshold:.0f} %")
        if m.order_latency_s is not None and m.order_latency_s > c.scale_down_latency_threshold:
            why.append(f"order latency {m.order_latency_s:.1f} s > "
                       f"{c.scale_down_latency_threshold:.1f} s")
        return " and ".join(why) or None

    def decide(self, now: float, m: ScalingMetrics, stations: int, *,
               may_scale_down: bool, scale_down_blocked: str = "",
               can_add: bool = True) -> Verdict | None:
        """The decision at ``now`` for ``stations`` running, or None (nothing to say).

        ``may_scale_down``: the controller is at its lowest (or off) and did not step down
        within the window (``scale_down_blocked`` says otherwise, in words); ``can_add``: a
        source is left to start.
        """
        if stations < self.min_stations and can_add:
            return self._act(ScalingAction.SCALE_UP,
                             f"{stations} stations < min_stations {self.min_stations}")
        if stations > self.max_stations:
            return self._act(ScalingAction.SCALE_DOWN,
                             f"{stations} stations > max_stations {self.max_stations}")
        window = self.config.hysteresis_window
        up, down = self.up_reason(m), self.down_reason(m)
        self._up_since = (self._up_since if self._up_since is not None else now) if up \
            else None
        self._down_since = (self._down_since if self._down_since is not None else now) \
            if down else None
        if down and now - self._down_since >= window:  # type: ignore[operator]
            held = f"{down} for {window:.0f} s"
            if stations <= self.min_stations:
                return self._hold("min", f"{held}, but at min_stations {self.min_stations}")
            if not may_scale_down:
                return self._hold("last-resort", f"{held}, but {scale_down_blocked}")
            return self._act(ScalingAction.SCALE_DOWN, held)
        if up and now - self._up_since >= window:  # type: ignore[operator]
            held = f"{up} for {window:.0f} s"
            if stations >= self.max_stations:
                return self._hold("max", f"{held}, but at max_stations {self.max_stations}")
            if not can_add:
                return self._hold("sources", f"{held}, but no configured source is left")
            return self._act(ScalingAction.SCALE_UP, held)
        return None

    def _act(self, action: ScalingAction, reason: str) -> Verdict:
        self._up_since = self._down_since = None  # the next action needs a whole window
        self._held = None
        return Verdict(action, reason)

    def _hold(self, kind: str, reason: str) -> Verdict | None:
        if self._held == kind:
            return None
        self._held = kind
        return Verdict(ScalingAction.HOLD, reason)


def next_source(stations: tuple[StationConfig, ...], in_use: set[str]) -> StationConfig | None:
    """The first configured station not in use; past the list, one more synthetic camera
    like the last configured one (the demo), or None for real cameras."""
    for station in stations:
        if station.name not in in_use:
            return station
    last = stations[-1]
    if last.source != "synthetic":
        return None
    k = len(stations) + 1
    while f"station-{k}" in in_use or any(s.name == f"station-{k}" for s in stations):
        k += 1
    return replace(last, name=f"station-{k}", seed=k - 1)


class Autoscaler:
    """Runs :class:`ScalingPolicy` against the station pool (control thread)."""

    def __init__(self, config: ScalingConfig, stations: tuple[StationConfig, ...], *,
                 active: Callable[[], list[str]], add: Callable[[StationConfig], None],
                 remove: Callable[[str], None], metrics: Callable[[], ScalingMetrics],
                 scale_down_blocked: Callable[[float], str | None],
                 publish: Callable[[EngineEvent], None],
                 store: Callable[[ScalingDecision], None]) -> None:
        self.policy = ScalingPolicy(config)
        self.enabled = config.enabled
        self._stations = stations
        self._active, self._add, self._remove = active, add, remove
        self._metrics, self._blocked = metrics, scale_down_blocked
        self._publish, self._store = publish, store
        self._history: collections.deque[ScalingDecision] = collections.deque(maxlen=_HISTORY)
        self._lock = threading.Lock()

    def initial(self) -> list[StationConfig]:
        """The stations to start with: ``min_stations`` of the sources when autoscaling is
        on, else every configured station."""
        if not self.enabled:
            return list(self._stations)
        chosen: list[StationConfig] = []
        while len(chosen) < self.policy.min_stations:
            station = next_source(self._stations, {s.name for s in chosen})
            if station is None:
                break
            chosen.append(station)
        return chosen

    def remember(self, earlier: list[ScalingDecision]) -> None:
        """Decisions of earlier runs (from the results store), before this run's."""
        with self._lock:
            self._history.extendleft(reversed(earlier))

    def history(self, since: float | None = None) -> list[ScalingDecision]:
        """Every decision kept (the last 1000), oldest first; ``since``: newer than that
        wall-clock time."""
        with self._lock:
            return [d for d in self._history if since is None or d.ts > since]

    def check_settings(self, min_stations: int | None, max_stations: int | None
                       ) -> tuple[int, int]:
        """The bounds asked for (None: keep), or ``InputError``."""
        lo = self.policy.min_stations if min_stations is None else min_stations
        hi = self.policy.max_stations if max_stations is None else max_stations
        if not 1 <= lo <= hi <= 256:
            raise InputError(f"autoscaling bounds: expected 1 <= min ({lo}) <= max ({hi}) "
                             "<= 256")
        return lo, hi

    def apply_settings(self, on: bool, bounds: tuple[int, int]) -> None:
        """Control thread: autoscaling on or off with new bounds; a Notification says so."""
        self.enabled = on
        self.policy.set_bounds(*bounds)
        self._publish(Notification(
            Severity.INFO, f"autoscaling {'on' if on else 'off'}, {bounds[0]} to {bounds[1]} "
                           "stations", "autoscaler"))

    def tick(self, now: float | None = None) -> ScalingDecision | None:
        """One look (control thread): decide, act, record."""
        if not self.enabled:
            return None
        t = time.monotonic() if now is None else now
        active = self._active()
        metrics = self._metrics()
        blocked = self._blocked(t)
        candidate = next_source(self._stations, set(active))
        verdict = self.policy.decide(t, metrics, len(active), may_scale_down=blocked is None,
                                     scale_down_blocked=blocked or "",
                                     can_add=candidate is not None)
        if verdict is None:
            return None
        station, new = None, len(active)
        try:
            if verdict.action is ScalingAction.SCALE_UP and candidate is not None:
                station, new = candidate.name, new + 1
                self._add(candidate)
            elif verdict.action is ScalingAction.SCALE_DOWN:
                station, new = active[-1], new - 1  # the newest leaves first
                self._remove(station)
        except InputError as exc:  # the operator changed the pool meanwhile: next look
            logger.info("autoscaler: %s", exc)
            return None
        decision = ScalingDecision(time.time(), len(active), new, verdict.action,
                                   verdict.reason, SetBy.AUTOSCALER,
                                   metrics.as_dict(len(active)), station)
        with self._lock:
            self._history.append(decision)
        self._publish(decision)
        try:
            self._store(decision)
        except Exception as exc:  # the decision stands; say it was not kept
            self._publish(Notification(Severity.ERROR, f"scaling decision not stored: {exc}",
                                       "autoscaler"))
        return decision

