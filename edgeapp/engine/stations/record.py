"""What the engine knows about one station: its lifecycle, its camera, its order, its counts.

A record outlives the station's processes: a restart gives it a new channel, while its
counters, its crash history and its name stay. The pool thread writes the lifecycle fields;
the router writes the order and frame fields; clients read (``status()``).
"""

from __future__ import annotations

import time

import numpy as np

from edgeapp.config import StationConfig
from edgeapp.engine.api import CameraState, StationState
from edgeapp.engine.metrics import LatencyWindow, RateMeter
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.channel import StationChannel
from edgeapp.engine.stations.supervisor import CrashHistory, RestartPolicy


class StationRecord:
    """One station, across its restarts."""

    def __init__(self, config: StationConfig, policy: RestartPolicy) -> None:
        self.config = config
        self.name = config.name
        self.channel: StationChannel | None = None
        self.state, self.reason = StationState.STOPPED, "not started"
        self.camera: CameraState | None = None
        self.crashes = CrashHistory(policy)
        self.restarts = 0
        self.restart_at: float | None = None  # RESTARTING: monotonic time of the next start
        self.drain_until: float | None = None  # DRAINING: when the order is cut short
        self.stop_reason = "station stopped"  # how an order cut short by the stop ends
        self.stopping = False  # asked to end: an exit is not a crash
        self.terminated = False  # drained too long: SIGTERM sent
        # order (router)
        self.busy = False
        self.order_id: str | None = None
        self.order_started: float | None = None
        self.asks: dict[str, str | None] = {}  # request_id -> order id, until its result
        # frames (router; Collector thread for ``latest`` and the rates)
        self.latest: tuple[int, np.ndarray] | None = None
        self.detected = RateMeter()
        self.frame_latency = LatencyWindow()
        self.frames_lost = 0  # slots overwritten before the engine could copy them
        self.frames_refused = 0  # the Producer's queue was full
        self.frames_processed = 0  # detections came back
        self.stats: m.StationStats | None = None
        self.fps_in: float | None = None
        self._frames_in_before = 0  # frames the camera gave before the last restart
        self._truth_before: int | None = None  # orders a synthetic camera finished, likewise
        self._dropped_before = 0  # detections its earlier processes did not take
        self._last_stats: tuple[float, int] | None = None

    @property
    def live(self) -> bool:
        """A process runs (or is starting, or draining)."""
        return self.channel is not None

    @property
    def frames_in(self) -> int:
        """Frames from the camera since the station was first started."""
        return self._frames_in_before + (self.stats.frames_in if self.stats else 0)

    @property
    def detections_dropped(self) -> int:
        """Detections dropped because the station did not keep up, since first started."""
        channel = self.channel
        return self._dropped_before + (channel.dropped if channel is not None else 0)

    def process_ended(self) -> None:
        """The process is gone (its channel closed): keep its counts, forget the channel."""
        if self.channel is not None:
            self._dropped_before += self.channel.dropped
        self.channel, self.drain_until = None, None

    @property
    def truth_orders(self) -> int | None:
        """Orders the synthetic camera finished since first started (None: a real camera)."""
        now = self.stats.truth_orders if self.stats is not None else None
        if now is None and self._truth_before is None:
            return None
        return (now or 0) + (self._truth_before or 0)

    def take_stats(self, stats: m.StationStats) -> None:
        """The station's counters: rates from their change since the last report."""
        now = time.monotonic()
        if self._last_stats is not None and now > self._last_stats[0]:
            self.fps_in = (stats.frames_out - self._last_stats[1]) / (now - self._last_stats[0])
        self._last_stats = (now, stats.frames_out)
        self.stats = stats

    def new_process(self, channel: StationChannel) -> None:
        """A (re)started process: fresh per-process figures, the totals kept."""
        if self.stats is not None:
            self._frames_in_before += self.stats.frames_in
            if self.stats.truth_orders is not None:
                self._truth_before = (self._truth_before or 0) + self.stats.truth_orders
        self.channel, self.stats, self._last_stats, self.fps_in = channel, None, None, None
        self.camera, self.latest = None, None
        self.busy, self.order_id, self.order_started = False, None, None
        self.stopping, self.drain_until, self.restart_at = False, None, None
        self.terminated = False
