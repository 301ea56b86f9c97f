"""SLOs: OK / WARNING / CRITICAL at the boundaries, thresholds from the config, events."""

from __future__ import annotations

import pytest

from edgeapp.config.schema import SloConfig
from edgeapp.engine.api import Slo, SloChanged, SloState
from edgeapp.engine.control.slo import MetricsSample, SloMonitor, slo_state

OK, WARNING, CRITICAL = SloState.OK, SloState.WARNING, SloState.CRITICAL


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, OK), (79.99, OK), (80.0, WARNING), (99.99, WARNING), (100.0, WARNING),
    (100.01, CRITICAL), (1e9, CRITICAL),
])
def test_states_at_the_boundaries(value: float, expected: SloState) -> None:
    # "value <= limit" is kept at the limit itself; WARNING starts 20 % below it.
    assert slo_state(value, 100.0, 0.2) == expected


def test_unmeasured_value_is_ok_and_stays_unknown() -> None:
    monitor = SloMonitor(SloConfig())
    events = monitor.update(MetricsSample())
    assert events == []
    assert all(s.state == OK and s.value is None for s in monitor.status)
    assert monitor.measured == {}, "nothing measured: the controllers get no evidence"


def test_thresholds_come_from_the_config() -> None:
    config = SloConfig(memory_percent=50.0, frame_latency_ms=100.0, order_latency_s=2.0,
                       queue_factor=1.0, warning_margin=0.5)
    sample = MetricsSample(queue_size=11, fps=10.0, memory_percent=30.0,
                           frame_latency_p95_ms=60.0, order_latency_s=0.9)
    monitor = SloMonitor(config)
    monitor.update(sample)
    got = {s.slo: (s.state, s.limit) for s in monitor.status}
    assert got == {Slo.QUEUE: (CRITICAL, 10.0),  # 11 queued > 1.0 x 10 fps
                   Slo.MEMORY: (WARNING, 50.0),  # 30 >= 50 * (1 - 0.5)
                   Slo.FRAME_LATENCY: (WARNING, 100.0),
                   Slo.ORDER_LATENCY: (OK, 2.0)}
    # The same sample under the defaults (90 %, 1000 ms, 5 s, 2 x fps, 20 %) is all OK but
    # the queue: 11 frames against a limit of 20 is OK too.
    default = SloMonitor(SloConfig())
    default.update(sample)
    assert all(s.state == OK for s in default.status)


def test_queue_limit_follows_the_summed_fps() -> None:
    monitor = SloMonitor(SloConfig())
    monitor.update(MetricsSample(queue_size=40, fps=30.0))
    assert monitor.states[Slo.QUEUE] == OK  # 40 < 0.8 x 60
    monitor.update(MetricsSample(queue_size=40, fps=15.0))
    assert monitor.states[Slo.QUEUE] == CRITICAL  # 40 > 30
    monitor.update(MetricsSample(queue_size=40, fps=0.0))
    assert monitor.states[Slo.QUEUE] == OK, "no stream running: the queue SLO is unknown"
    assert Slo.QUEUE not in monitor.measured


def test_an_event_only_when_a_state_changes() -> None:
    monitor = SloMonitor(SloConfig())
    slow = MetricsSample(frame_latency_p95_ms=1300.0)
    assert monitor.update(slow) == [SloChanged(Slo.FRAME_LATENCY, OK, CRITICAL, 1300.0, 1000.0)]
    assert monitor.update(MetricsSample(frame_latency_p95_ms=1400.0)) == []
    assert monitor.update(MetricsSample(frame_latency_p95_ms=840.0)) == [
        SloChanged(Slo.FRAME_LATENCY, CRITICAL, WARNING, 840.0, 1000.0)]
    # Not measured this time (no frame, no order ended): the last state holds, no event,
    # and the controllers get no evidence from it
    assert monitor.update(MetricsSample()) == []
    (held,) = [s for s in monitor.status if s.slo is Slo.FRAME_LATENCY]
    assert (held.state, held.value, held.fresh) == (WARNING, 840.0, False)
    assert Slo.FRAME_LATENCY not in monitor.measured
