"""``edgeapp bench controller --real``: a real Engine driven through a scenario, briefly."""

from __future__ import annotations

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import EventLog, engine_threads

from edgeapp.engine.api import WorkerJoined, WorkerLeft
from edgeapp.engine.bench.controller import summarise
from edgeapp.engine.bench.controller_real import real_scenarios, run_real


def test_capacity_drop_kills_a_worker_that_the_engine_restarts_and_the_figures_are_measured():
    # Given the real capacity-drop scenario, 12 s long, under the heuristic controller
    scenario = real_scenarios(12)["capacity_drop"]
    log = EventLog()

    # When the bench runs it
    run = run_real("heuristic", scenario, subscriber=log)

    # Then a worker left at the disturbance and a new one joined (the Engine restarted it)
    assert len(log.of(WorkerLeft)) >= 1
    left = log.events.index(log.of(WorkerLeft)[0])
    assert any(isinstance(e, WorkerJoined) for e in log.events[left:]), log.events[-12:]
    # ... and every second has the parameters in force and the four SLO states
    assert len(run.parameters) == len(run.states) == 12
    assert all(len(states) == 4 for states in run.states)
    assert run.space.fps_levels == (1.0, 0.66, 0.5, 0.33)  # the engine's own levels
    figures = summarise(run)
    assert 0.0 <= figures["slo_fulfilment"] <= 1.0 and 0.0 <= figures["quality"] <= 1.0
    assert figures["step_ms_p99"] is not None and figures["step_ms_p99"] > 0
    assert not engine_threads(), engine_threads()
