"""The station pool in the running Engine: a station crashing in a loop ends CRASHED, a removed
station finishes its order before it goes, and the operator's calls return at once with
their outcome as an event. Real station processes, a real worker, the synthetic camera."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import psutil
import pytest
from engine_helpers import EventLog, engine_config, engine_threads, short_dir

from edgeapp.config import StationConfig
from edgeapp.engine.api import (
    Notification,
    ParametersChanged,
    SetBy,
    Severity,
    StationState,
    StationStateChanged,
)
from edgeapp.engine.control import elasticity
from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.engine.stations import messages as m
from edgeapp.errors import InputError

CAM = [{"name": "cam", "seed": 5}]


def lifecycle(log: EventLog, station: str) -> list[StationState]:
    """The station's lifecycle states in order (camera-only changes left out)."""
    return [e.new for e in log.of(StationStateChanged)
            if e.station == station and e.old is not e.new]


def test_a_station_crashing_in_a_loop_ends_crashed_and_stays_down():
    # Given an engine that gives a station up after 2 crashes in its window
    root = short_dir()
    engine = Engine(engine_config(root, CAM, supervision={"max_crashes": 2}))
    log = EventLog()
    engine.subscribe(log)
    engine.start()
    try:
        # When its process is killed, restarted after 1 s, and killed again
        pids = []
        for round_ in (1, 2):
            log.wait(lambda r=round_: lifecycle(log, "cam").count(StationState.RUNNING) >= r,
                     90, f"cam running ({round_})")
            pid = engine.status().station("cam").pid
            pids.append(pid)
            os.kill(pid, signal.SIGKILL)
            log.wait(lambda r=round_: len([s for s in lifecycle(log, "cam") if s in (
                StationState.RESTARTING, StationState.CRASHED)]) >= r, 30, "the crash seen")
        # Then it restarted once, is CRASHED now and stays so, and the operator is told
        assert lifecycle(log, "cam") == [
            StationState.STARTING, StationState.RUNNING, StationState.RESTARTING,
            StationState.STARTING, StationState.RUNNING, StationState.CRASHED]
        status = engine.status().station("cam")
        assert status.state is StationState.CRASHED and status.pid is None
        assert status.restarts == 1 and "not restarted (2 crashes in 300 s)" in status.reason
        assert any(n.severity is Severity.ERROR and "crashed 2 times" in n.text
                   for n in log.of(Notification))
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                       for p in pids)
        # ... and only adding it again brings it back
        engine.add_station(StationConfig(name="cam", seed=5))
        log.wait(lambda: lifecycle(log, "cam")[-2:] == [StationState.STARTING,
                                                         StationState.RUNNING], 90, "re-added")
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()


def test_a_removed_station_finishes_the_order_on_its_counter_before_it_goes():
    # Given two stations, one of which will be removed while an order is on its counter
    root = short_dir()
    config = engine_config(root, [*CAM, {"name": "other", "seed": 6}])
    engine = Engine(config)
    log = EventLog()
    seen_at_stop: dict[str, object] = {}

    def at_stop(event: object) -> None:  # the event thread, the moment "stopped" is told
        if isinstance(event, StationStateChanged) and event.station == "cam" \
                and event.new is StationState.STOPPED:
            with ResultsStore(default_results_path(config.data_dir), create=False) as store:
                seen_at_stop["results"] = store.by_station("cam", limit=None)
            seen_at_stop["pid_alive"] = psutil.pid_exists(victim["pid"]) and \
                psutil.Process(victim["pid"]).status() != "zombie"

    engine.subscribe(at_stop)  # first: it has looked when the log hears of the stop
    engine.subscribe(log)
    engine.start()
    victim: dict = {}
    try:
        def order_at_cam() -> bool:
            status = engine.status().station("cam")
            victim.update(order=status.current_order, pid=status.pid)
            return status.current_order is not None

        log.wait(order_at_cam, 120, "an order on cam's counter")
        # When the operator removes it
        engine.remove_station("cam")
        with pytest.raises(InputError, match="already being removed"):
            engine.remove_station("cam")
        log.wait(lambda: StationState.STOPPED in lifecycle(log, "cam"), 60, "cam stopped")
        # Then it drained: the order it held was judged and stored before it was told gone
        assert lifecycle(log, "cam")[-2:] == [StationState.DRAINING, StationState.STOPPED]
        stored = [r for r in seen_at_stop["results"] if r.order_id == victim["order"]]
        assert stored, f"order {victim['order']} not in the store when cam stopped"
        assert stored[-1].status is not OrderStatus.FAILED, stored[-1]
        assert seen_at_stop["pid_alive"] is False
        # ... the other station goes on, and a name not running is refused at once
        assert engine.status().station("other").state is StationState.RUNNING
        with pytest.raises(InputError, match="no station cam is running"):
            engine.remove_station("cam")
    finally:
        engine.stop(timeout=20)
    assert engine.summary()["stations"] == 2
    assert not engine_threads(), engine_threads()


def test_a_removed_station_past_its_drain_bound_fails_its_order_as_removed():
    # Given a station that may not take any time to finish its order when removed
    root = short_dir()
    config = engine_config(root, CAM, supervision={"drain_timeout_s": 0})
    engine = Engine(config)
    log = EventLog()
    engine.subscribe(log)
    engine.start()
    try:
        def busy() -> str | None:
            return engine.status().station("cam").current_order

        log.wait(lambda: busy() is not None, 120, "an order on cam's counter")
        order = busy()
        # When it is removed
        engine.remove_station("cam")
        log.wait(lambda: StationState.STOPPED in lifecycle(log, "cam"), 60, "cam stopped")
        # Then the order on its counter ended failed, saying the station was removed
        (result,) = [r for r in log.results("cam") if r.order_id == order]
        assert result.status is OrderStatus.FAILED and "station removed" in result.reason
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()


def test_control_calls_return_at_once_and_their_outcome_arrives_as_an_event(monkeypatch):
    # Given an AIF build that takes as long as the test wants (a stand-in for the agent:
    # JAX compiles it for a minute on this machine) and an engine with one station
    release = threading.Event()
    real = elasticity.make_controller

    def slow_build(kind, space):
        if kind == "aif":
            release.wait(120)
            stand_in = real("static", space)
            stand_in.kind = "aif"
            return stand_in
        return real(kind, space)

    monkeypatch.setattr(elasticity, "make_controller", slow_build)
    root = short_dir()
    engine = Engine(engine_config(root, CAM))
    log = EventLog()
    engine.subscribe(log)
    engine.start()
    try:
        log.wait(lambda: StationState.RUNNING in lifecycle(log, "cam"), 90, "cam running")
        # When the operator asks for the AIF controller
        engine.set_controller("aif")  # returns while the build is blocked
        assert not engine.status().control.ready
        # Then other calls are not held up behind it: an override takes effect meanwhile
        engine.set_override(resolution=1)
        log.wait(lambda: any(e.new.resolution_level == 1 for e in log.of(ParametersChanged)),
                 30, "the override")
        assert log.of(ParametersChanged)[-1].source is SetBy.OPERATOR
        # ... even while the station reads nothing and its outbox is full
        pid = engine.status().station("cam").pid
        os.kill(pid, signal.SIGSTOP)
        try:
            channel = engine._pool.get("cam").channel  # white box: fill the outbox
            filler = m.Detections(0, np.zeros((64, 6), np.float32))
            posted = 0
            while channel.post(filler, droppable=True) and posted < 100_000:
                posted += 1
            assert posted < 100_000, "the outbox never filled"
            decisions = engine.status().control.decisions
            engine.set_override(resolution=2)
            log.wait(lambda: any(e.new.resolution_level == 2
                                 for e in log.of(ParametersChanged)), 30, "the override")
            log.wait(lambda: engine.status().control.decisions >= decisions + 5, 30,
                     "the controller deciding on")
        finally:
            os.kill(pid, signal.SIGCONT)
        # ... and what can be known at once is refused at once
        for call, match in ((lambda: engine.set_override(fps=99), "fps_level"),
                            (lambda: engine.set_controller("psychic"), "controller kind"),
                            (lambda: engine.add_station(StationConfig(name="cam")),
                             "already runs"),
                            (lambda: engine.remove_station("nobody"), "no station nobody"),
                            (lambda: engine.set_autoscaling(True, 5, 2), "min")):
            with pytest.raises(InputError, match=match):
                call()
        # When the build ends, then the switch is announced
        assert not any("aif controller" in n for n in log.notes())
        release.set()
        log.wait(lambda: any("now set by the aif controller" in n for n in log.notes()), 30,
                 "the switch")
        assert engine.status().control.ready
        engine.set_autoscaling(True, 1, 1)
        log.wait(lambda: any("autoscaling on, 1 to 1" in n for n in log.notes()), 30,
                 "autoscaling on")
        assert engine.status().control.autoscaling
    finally:
        release.set()
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()
