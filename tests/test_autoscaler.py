"""The autoscaler's policy as tables (every threshold both ways, the hysteresis window, the
bounds, the last-resort rule, GPU n/a) and its wiring against a stand-in pool."""

from __future__ import annotations

import pytest

from edgeapp.config import ScalingConfig, StationConfig
from edgeapp.engine.api import ScalingAction, ScalingDecision, SetBy
from edgeapp.engine.stations.autoscaler import (
    Autoscaler,
    ScalingMetrics,
    ScalingPolicy,
    next_source,
)
from edgeapp.errors import InputError

CONFIG = ScalingConfig(enabled=True, scale_up_cpu_threshold=80, scale_up_gpu_threshold=85,
                       scale_up_latency_threshold=5, scale_down_cpu_threshold=90,
                       scale_down_gpu_threshold=95, scale_down_latency_threshold=6,
                       hysteresis_window=30, min_stations=1, max_stations=4)
CALM = ScalingMetrics(cpu_percent=40.0, gpu_percent=None, order_latency_s=1.0)


def held(metrics: ScalingMetrics, stations: int = 2, *, seconds: float = 30.0,
         may_scale_down: bool = True, can_add: bool = True) -> ScalingAction | None:
    """The action after ``metrics`` held for ``seconds`` (looked at once a second)."""
    policy = ScalingPolicy(CONFIG)
    verdict = None
    for t in range(int(seconds) + 1):
        verdict = policy.decide(float(t), metrics, stations, may_scale_down=may_scale_down,
                                scale_down_blocked="the controller can still lower quality",
                                can_add=can_add)
        if verdict is not None:
            break
    return None if verdict is None else verdict.action


@pytest.mark.parametrize(("cpu", "gpu", "latency", "expected"), [
    (79.0, None, 1.0, ScalingAction.SCALE_UP),    # CPU just under the up threshold
    (80.0, None, 1.0, None),                      # at it: no room
    (85.0, None, 1.0, None),                      # between the thresholds: hold
    (90.0, None, 1.0, None),                      # at the down threshold: not over it
    (91.0, None, 1.0, ScalingAction.SCALE_DOWN),  # over it
    (40.0, 84.0, 1.0, ScalingAction.SCALE_UP),    # GPU under its up threshold
    (40.0, 85.0, 1.0, None),                      # GPU at it
    (40.0, 96.0, 1.0, ScalingAction.SCALE_DOWN),  # GPU over its down threshold
    (40.0, None, 4.9, ScalingAction.SCALE_UP),    # latency under its up threshold
    (40.0, None, 5.0, None),                      # latency at it
    (40.0, None, 6.5, ScalingAction.SCALE_DOWN),  # latency over its down threshold
    (40.0, None, None, ScalingAction.SCALE_UP),   # no order ended yet: no sign of trouble
    (None, None, 1.0, None),                      # CPU not measured: no room known
])
def test_every_threshold_in_both_directions(cpu, gpu, latency, expected):
    assert held(ScalingMetrics(cpu, gpu, latency)) is expected


def test_gpu_not_measured_lets_cpu_and_latency_decide_and_says_so():
    policy = ScalingPolicy(CONFIG)
    assert policy.up_reason(CALM) is not None and "GPU n/a" in policy.up_reason(CALM)
    assert policy.down_reason(ScalingMetrics(50.0, None, 1.0)) is None


def test_a_condition_must_hold_for_the_whole_window_and_a_break_restarts_it():
    policy = ScalingPolicy(CONFIG)
    busy = ScalingMetrics(85.0, None, 1.0)
    looks = [(t, CALM) for t in range(0, 20)] + [(20, busy)] + [(t, CALM) for t in range(21, 52)]
    actions = {t: v.action for t, m in looks
               if (v := policy.decide(float(t), m, 2, may_scale_down=True)) is not None}
    # calm from 0 to 19 is not 30 s; the busy look at 20 restarts the window at 21
    assert actions == {51: ScalingAction.SCALE_UP}
    # after an action the next one needs a whole window again
    assert policy.decide(52.0, CALM, 3, may_scale_down=True) is None
    assert policy.decide(81.0, CALM, 3, may_scale_down=True) is None
    assert policy.decide(82.0, CALM, 3, may_scale_down=True).action is ScalingAction.SCALE_UP


def test_bounds_act_at_once_and_a_blocked_action_is_a_hold_said_once():
    policy = ScalingPolicy(CONFIG)
    below = policy.decide(0.0, ScalingMetrics(99.0, None, 9.0), 0, may_scale_down=True)
    assert below.action is ScalingAction.SCALE_UP and "min_stations" in below.reason
    above = policy.decide(0.0, CALM, 5, may_scale_down=True)
    assert above.action is ScalingAction.SCALE_DOWN and "max_stations" in above.reason
    # room, but at max_stations: one HOLD saying so, then silence
    holds = [policy.decide(float(t), CALM, 4, may_scale_down=True) for t in range(100)]
    said = [v for v in holds if v is not None]
    assert [v.action for v in said] == [ScalingAction.HOLD]
    assert "at max_stations 4" in said[0].reason and "CPU 40 % < 80 %" in said[0].reason
    # overloaded at min_stations: a HOLD too
    assert held(ScalingMetrics(95.0, None, 1.0), stations=1) is ScalingAction.HOLD
    # no source left: a HOLD
    assert held(CALM, can_add=False) is ScalingAction.HOLD


def test_scale_down_is_the_last_resort():
    overloaded = ScalingMetrics(95.0, None, 1.0)
    # while the controller can still lower quality: hold, and say why
    policy = ScalingPolicy(CONFIG)
    verdicts = [policy.decide(float(t), overloaded, 3, may_scale_down=False,
                              scale_down_blocked="the controller can still lower quality")
                for t in range(31)]
    (hold,) = [v for v in verdicts if v is not None]
    assert hold.action is ScalingAction.HOLD
    assert hold.reason == ("CPU 95 % > 90 % for 30 s, but the controller can still lower "
                           "quality")
    # once it may (controller at its lowest or off, no step down in the window): down
    verdict = policy.decide(31.0, overloaded, 3, may_scale_down=True)
    assert verdict.action is ScalingAction.SCALE_DOWN and verdict.reason == \
        "CPU 95 % > 90 % for 30 s"


def test_sources_come_from_the_config_in_order_then_more_synthetic_cameras():
    demo = tuple(StationConfig(name=f"station-{i + 1}", seed=i) for i in range(2))
    assert next_source(demo, set()).name == "station-1"
    assert next_source(demo, {"station-1"}).name == "station-2"
    extra = next_source(demo, {"station-1", "station-2"})
    assert (extra.name, extra.seed, extra.source) == ("station-3", 2, "synthetic")
    files = (StationConfig(name="door", source="/videos/door.mp4"),)
    assert next_source(files, {"door"}) is None


class FakePool:
    """The pool's add / remove / active, recorded."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, station: StationConfig) -> None:
        if station.name in self.names:
            raise InputError(f"station {station.name} already runs")
        self.names.append(station.name)

    def remove(self, name: str) -> None:
        self.names.remove(name)


def test_the_autoscaler_acts_on_the_pool_and_keeps_and_publishes_every_decision():
    pool, events, stored = FakePool(), [], []
    metrics = {"now": CALM}
    stations = (StationConfig(name="a"), StationConfig(name="b"))
    scaler = Autoscaler(CONFIG, stations, active=lambda: list(pool.names), add=pool.add,
                        remove=pool.remove, metrics=lambda: metrics["now"],
                        scale_down_blocked=lambda now: None, publish=events.append,
                        store=stored.append)
    for station in scaler.initial():
        pool.add(station)
    assert pool.names == ["a"], "min_stations of the configured sources"
    decisions = [d for t in range(0, 32) if (d := scaler.tick(float(t))) is not None]
    assert [(d.action, d.old_count, d.new_count, d.station) for d in decisions] == [
        (ScalingAction.SCALE_UP, 1, 2, "b")]
    assert pool.names == ["a", "b"]
    metrics["now"] = ScalingMetrics(97.0, None, 1.0)
    decisions = [d for t in range(40, 72) if (d := scaler.tick(float(t))) is not None]
    assert [(d.action, d.station) for d in decisions] == [(ScalingAction.SCALE_DOWN, "b")]
    assert pool.names == ["a"], "the newest station leaves first"
    history = scaler.history()
    assert events == stored == history and len(history) == 2
    assert all(d.by is SetBy.AUTOSCALER and d.reason for d in history)
    assert history[1].metrics == {"cpu_percent": 97.0, "gpu_percent": None,
                                  "order_latency_p95_s": 1.0, "stations": 2.0}
    assert ScalingDecision.from_dict(history[1].to_dict()) == history[1]
    with pytest.raises(InputError, match="min"):
        scaler.check_settings(5, 2)
    assert scaler.check_settings(None, 3) == (1, 3)


def test_bench_autoscale_figures_count_the_ramp_and_every_change_after_it():
    from edgeapp.engine.bench.autoscale import figures

    def decision(t: float, action: ScalingAction, old: int, new: int) -> ScalingDecision:
        return ScalingDecision(1000.0 + t, old, new, action, "why", SetBy.AUTOSCALER, {})

    up, down, hold = ScalingAction.SCALE_UP, ScalingAction.SCALE_DOWN, ScalingAction.HOLD
    ramp = [decision(31, up, 1, 2), decision(62, up, 2, 3), decision(93, hold, 3, 3)]
    flapping = [decision(130, down, 3, 2), decision(170, up, 2, 3)]
    out = figures(ramp + flapping, 1000.0, seconds=200, ok=199,
                  summary={"verdict_accuracy": 0.99, "orders": 40})
    assert (out["stations_reached"], out["seconds_to_steady"], out["changes_after_steady"],
            out["slo_fulfilment"], out["verdict_accuracy"]) == (3, 62.0, 2, 0.995, 0.99)
    assert [d["action"] for d in out["decisions"]] == [
        "scale_up", "scale_up", "hold", "scale_down", "scale_up"]
    still = figures([], 1000.0, seconds=0, ok=0, summary={})
    assert (still["stations_reached"], still["changes_after_steady"],
            still["slo_fulfilment"]) == (1, 0, None)


def test_bench_autoscale_refuses_bad_options():
    from edgeapp.cli import main

    assert main(["bench", "autoscale", "--json", "--duration", "0"]) == 64
