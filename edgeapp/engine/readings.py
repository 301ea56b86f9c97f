"""What the controller and the autoscaler decide on, read from the engine's parts.

``Engine`` hands these to the control loop (``control_sample``, every control interval) and
the autoscaler (``scaling_metrics``, ``scale_down_blocked``); they read, never change, the
parts they are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from edgeapp.engine.api import CameraState
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.metrics import percentiles
from edgeapp.engine.stations.autoscaler import ScalingMetrics

if TYPE_CHECKING:
    from edgeapp.engine.control.loop import ControlLoop
    from edgeapp.engine.metrics.sampler import MetricsSampler
    from edgeapp.engine.stations.record import StationRecord
    from edgeapp.engine.tally import RunTally

# The controller's utilisation is the mean CPU use over this long: one 0.5 s reading swings
# between 40 and 95 % on the demo (a ticket read costs a few hundred ms of CPU). The busiest
# reading of 10 s was measured too: it never let the controller off its start settings.
UTILISATION_WINDOW_S = 3.0


def control_sample(tally: RunTally, producer: Mapping[str, Any],
                   records: Iterable[StationRecord], metrics: MetricsSampler, *,
                   vlm_shares_cpu: bool) -> MetricsSample:
    """What the SLOs judge, over the control interval just ended (``producer``: the
    producer's status, empty before it runs)."""
    interval = tally.take_interval()
    running = [r for r in records if r.live]
    fps = sum(r.fps_in or 0.0 for r in running)
    (p95,) = percentiles(interval.frame_latencies, 95)
    cpu = metrics.cpu_mean(UTILISATION_WINDOW_S)
    orders = interval.order_latencies
    return MetricsSample(
        queue_size=producer.get("queue_size"), fps=fps or None,
        memory_percent=metrics.system().memory_percent,
        frame_latency_p95_ms=None if p95 is None else p95 * 1000.0,
        order_latency_s=max(orders) if orders else None,
        utilisation=None if cpu is None else cpu / 100.0,
        frames=interval.frames,
        streams_away=sum(r.camera in (CameraState.CONNECTING, CameraState.RECONNECTING)
                         for r in running),
        order_latency_streams_s=interval.streams_part(vlm_shares_cpu=vlm_shares_cpu))


def scaling_metrics(metrics: MetricsSampler) -> ScalingMetrics:
    """CPU (the mean of the last seconds), GPU (None where not measured), order latency p95
    over the last minute (every order counted once): what the autoscaler decides on."""
    (latency_p95,) = metrics.orders.recent_latency(95)
    return ScalingMetrics(metrics.cpu_mean(UTILISATION_WINDOW_S),
                          metrics.system().gpu_percent, latency_p95)


def scale_down_blocked(control: ControlLoop, hysteresis_s: float, now: float) -> str | None:
    """Why fewer stations may not be the answer yet (None: they may): the controller can
    still lower quality, or it stepped down within the hysteresis window."""
    if control.elasticity.kind != "static" and not control.elasticity.at_lowest:
        return "the controller can still lower quality"
    stepped = control.last_step_down
    if stepped is not None and now - stepped < hysteresis_s:
        return "the controller stepped quality down within the window"
    return None
