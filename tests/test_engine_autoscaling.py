"""Autoscaling in the running Engine on the demo's synthetic cameras: up to max while there is
room, down as the last resort when overloaded, every decision with its reason and kept in the
results store, no flapping.

The machine's CPU reading is the one figure replaced here: the test machine is shared and
often at 100 %, so "room" and "overload" are set by the test (a stand-in for the metrics
sampler's ``cpu_mean``, which the autoscaler reads; GPU stays unmeasured). Everything else is
real: the policy, the station pool, the station processes, the worker, the store. The
policy's thresholds are tested as tables in test_autoscaler.py.
"""

from __future__ import annotations

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import EventLog, engine_config, engine_threads, short_dir

from edgeapp.engine.api import (
    ScalingAction,
    ScalingDecision,
    SetBy,
    StationState,
    StationStateChanged,
)
from edgeapp.engine.engine import Engine
from edgeapp.engine.metrics.sampler import MetricsSampler
from edgeapp.engine.orders.store import ResultsStore, default_results_path

CAM = [{"name": "station-1", "seed": 0, "width": 640, "height": 360}]


class SetCpu:
    """Stands in for the sampler's CPU mean: the CPU use the test sets."""

    cpu = 30.0

    @staticmethod
    def cpu_mean(_sampler: MetricsSampler, _window_s: float) -> float:
        return SetCpu.cpu


def test_autoscaling_scales_up_with_room_and_down_as_the_last_resort(monkeypatch):
    # Given autoscaling on from 1 station to at most 2, a 2 s hysteresis window, the static
    # controller (off: scaling down is allowed once overloaded), and room on the machine
    monkeypatch.setattr(MetricsSampler, "cpu_mean", SetCpu.cpu_mean)
    SetCpu.cpu = 30.0
    root = short_dir()
    config = engine_config(root, CAM, scaling={
        "enabled": True, "min_stations": 1, "max_stations": 2, "hysteresis_window": 2.0})
    engine = Engine(config)
    log = EventLog()
    engine.subscribe(log)
    engine.start()
    try:
        assert engine.status().control.autoscaling
        # When there is room
        log.wait(lambda: any(d.action is ScalingAction.HOLD for d in log.of(ScalingDecision)),
                 60, "the autoscaler at max_stations")
        # Then it adds the next synthetic camera and then holds at max, saying why
        up, hold = log.of(ScalingDecision)
        assert (up.action, up.old_count, up.new_count, up.station) == (
            ScalingAction.SCALE_UP, 1, 2, "station-2")
        assert up.reason.startswith("CPU 30 % < 80 %, GPU n/a, ") and "for 2 s" in up.reason
        assert "at max_stations 2" in hold.reason
        assert up.metrics["cpu_percent"] == 30.0 and up.metrics["gpu_percent"] is None

        # When the machine is overloaded
        SetCpu.cpu = 97.0
        # Then the newest station drains and stops, with the reason
        log.wait(lambda: any(e.station == "station-2" and e.new is StationState.STOPPED
                             for e in log.of(StationStateChanged)), 60, "station-2 removed")
        down = log.of(ScalingDecision)[2]
        assert (down.action, down.old_count, down.new_count, down.station) == (
            ScalingAction.SCALE_DOWN, 2, 1, "station-2")
        assert down.reason == "CPU 97 % > 90 % for 2 s"
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()
    decisions = log.of(ScalingDecision)
    assert decisions[:3] == [up, hold, down] and engine.scaling_history() == decisions
    assert all(d.by is SetBy.AUTOSCALER and d.reason for d in decisions)
    # And every decision is in the results store, for the window after a restart
    with ResultsStore(default_results_path(config.data_dir), create=False) as store:
        kept = [ScalingDecision.from_dict(d) for d in store.scaling_history()]
    assert kept == decisions
    assert engine.summary()["stations"] == 2
