"""The controller inside the running Engine: real stations, a real worker, real SLO figures.

The SLO limits are set so that the real pipeline must break them (a frame latency budget of
1 ms) or cannot (budgets of minutes), which makes the controller's direction certain on any
machine; the simulator tests check how well each controller trades.
"""

from __future__ import annotations

import threading

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import (
    EventLog,
    engine_config,
    engine_threads,
    short_dir,
    three_grade_models,
)

from edgeapp.config import StationConfig
from edgeapp.engine.api import (
    Notification,
    ParametersChanged,
    SetBy,
    Slo,
    SloChanged,
    SloState,
    StationState,
    StreamParameters,
)
from edgeapp.engine.control import elasticity
from edgeapp.engine.engine import Engine
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import InputError

CAM = [{"name": "cam", "seed": 5}]


def _controller_changes(log: EventLog) -> list[ParametersChanged]:
    return [e for e in log.of(ParametersChanged) if e.source is SetBy.CONTROLLER]


def test_sustained_critical_steps_down_to_the_lowest_after_the_override_is_released():
    # Given an engine with a model for each grade whose frame latency budget (1 ms) no real
    # frame can meet, run by the heuristic controller, and an operator who pins full
    # resolution and the HIGH grade
    root = short_dir()
    config = engine_config(root, CAM, controller={"kind": "heuristic", "interval_s": 0.2},
                           models={"path": str(three_grade_models(root))},
                           slo={"frame_latency_ms": 1.0})
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    try:
        # (the FPS pinned too: until the first late frame, every SLO is OK and the
        # heuristic would raise it)
        engine.set_override(fps=3, resolution=0, grade="high")
        start = StreamParameters(3, 0, Grade.HIGH)  # 0.33 of the source FPS
        log.wait(lambda: engine.parameters == start, 30, "the override in force")

        # When frames arrive, too late for the budget
        log.wait(lambda: any(e.name is Slo.FRAME_LATENCY and e.new is SloState.CRITICAL
                             for e in log.of(SloChanged)), 60, "frame latency CRITICAL")
        decisions = engine.status().control.decisions
        log.wait(lambda: engine.status().control.decisions >= decisions + 10, 30,
                 "ten more decisions")

        # Then the operator's values hold: everything is pinned, so the controller has
        # nothing it may move
        assert engine.parameters == start and not _controller_changes(log)
        status = engine.status()
        assert status.parameters.set_by is SetBy.OPERATOR
        (frame_slo,) = [s for s in status.slos if s.name is Slo.FRAME_LATENCY]
        assert frame_slo.state is SloState.CRITICAL and frame_slo.limit == 1.0
        assert frame_slo.value is not None and frame_slo.value > 1.0
        assert status.control.at_lowest, "nothing it may move: only fewer stations help"

        # When the operator releases the override
        engine.clear_override()

        # Then the controller steps down, one level at a time, until it sits at the lowest
        # settings and says so
        lowest = StreamParameters(3, 2, Grade.LOW)
        log.wait(lambda: [c.new for c in _controller_changes(log)][-1:] == [lowest], 60,
                 "the lowest settings")
        assert engine.status().control.at_lowest
        changes = _controller_changes(log)
        assert [c.new for c in changes] == [
            StreamParameters(3, 1, Grade.HIGH), StreamParameters(3, 2, Grade.HIGH),
            StreamParameters(3, 2, Grade.MEDIUM), lowest]
        assert all("CRITICAL" in c.reason for c in changes), changes
        assert any("released" in text for text in log.notes())

        # ... and the stations and the worker follow: half-size frames, grade LOW
        log.wait(lambda: engine.latest_frame("cam").image.shape == (360, 640, 3), 30,
                 "half-size frames")
        log.wait(lambda: [w.grade for w in engine.status().workers] == [Grade.LOW], 30,
                 "the worker at grade LOW")
        assert engine.status().parameters.set_by is SetBy.CONTROLLER
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()
    assert engine.summary()["controller"] == "heuristic"


def test_with_room_to_spare_quality_steps_up_a_station_can_be_added_and_the_controller_switched():
    # Given SLO budgets the pipeline cannot break and an engine with a model for each grade
    # starting at the lowest settings, run by the heuristic controller
    root = short_dir()
    config = engine_config(root, CAM, controller={"kind": "heuristic", "interval_s": 0.1},
                           stream={"grade": "low"}, models={"path": str(three_grade_models(root))},
                           slo={"frame_latency_ms": 600_000.0, "order_latency_s": 3600.0,
                                "queue_factor": 1000.0})
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    try:
        # When every SLO stays OK
        # Then quality goes up, one step at a time, grade first
        log.wait(lambda: len(_controller_changes(log)) >= 2, 90, "two steps up")
        first, second = _controller_changes(log)[:2]
        assert first.old == StreamParameters(3, 0, Grade.LOW)
        assert first.new == StreamParameters(3, 0, Grade.MEDIUM)
        assert second.new == StreamParameters(3, 0, Grade.HIGH)
        assert all("OK" in c.reason for c in (first, second))
        assert not [e for e in log.of(SloChanged) if e.new is SloState.CRITICAL]

        # When a station is added to the running engine
        engine.add_station(StationConfig(name="cam-2", seed=6))
        # Then it runs at the parameters in force, and a name in use is refused
        log.wait(lambda: [st.state for st in engine.status().stations] == [
            StationState.RUNNING] * 2, 60, "the new station running")
        log.wait(lambda: engine.latest_frame("cam-2") is not None, 30, "a frame from cam-2")
        with pytest.raises(InputError, match="already runs"):
            engine.add_station(StationConfig(name="cam-2"))

        # When the operator switches to the static controller
        engine.set_controller("static")
        log.wait(lambda: any("static controller" in e.text for e in log.of(Notification)), 30,
                 "the switch")
        held = engine.parameters
        decisions = engine.status().control.decisions
        log.wait(lambda: engine.status().control.decisions >= decisions + 20, 30,
                 "twenty more decisions")
        # Then nothing moves any more
        assert engine.parameters == held
        assert engine.status().control.controller == "static"
        assert any("static controller" in e.text for e in log.of(Notification))
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()


def test_stop_waits_for_a_controller_that_is_still_being_built(monkeypatch):
    # Given a controller whose build outlasts stop()'s first join of the control thread (the
    # AIF agent compiles for many seconds on a starved machine; a process that exits during
    # that compile aborts inside XLA)
    building, built = threading.Event(), threading.Event()
    real = elasticity.make_controller

    def slow_build(kind, space):
        building.set()
        threading.Event().wait(7.0)
        built.set()
        return real(kind, space)

    monkeypatch.setattr(elasticity, "make_controller", slow_build)
    root = short_dir()
    engine = Engine(engine_config(root, CAM, controller={"kind": "heuristic"}))
    engine.start()
    try:
        assert building.wait(60), "the controller build never began"
    finally:
        # When the engine stops while the build runs
        engine.stop(timeout=10)
    # Then stop() returned only after the build ended and the control thread with it
    assert built.is_set()
    assert not engine_threads(), engine_threads()
