"""``edgeapp bench controller --real``: the controllers driving the real pipeline, briefly.

The built-in demo runs in a real :class:`~edgeapp.engine.engine.Engine` (station processes,
2 local workers, OCR, VLM batcher) on private sockets and a scratch data folder, once per
controller and scenario, for ``duration_s`` seconds after the first frames arrive:

- ``steady``: the demo's 4 stations;
- ``capacity_drop``: at a third of the run one local worker is killed (SIGKILL); the Engine
  restarts it, as it would in production, so capacity comes back after its start-up;
- ``demand_rise``: 2 stations, 2 more added at a third of the run.

Once a second the bench reads the Engine's status (parameters in force, SLO states) into the
same :class:`Run` the simulator bench fills, and reports the same figures; ``step_ms_p99`` is
the Engine's own timing of its decisions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeapp.config import Config, config_from_dict
from edgeapp.engine.api import StreamParameters
from edgeapp.engine.bench.controller import Run, summarise
from edgeapp.engine.bench.scenarios import bench_stations
from edgeapp.engine.control.simulator import Phase, Scenario
from edgeapp.errors import EdgeAppError

REAL_CONTROLLERS = ("aif", "heuristic", "static-max")


def real_scenarios(duration_s: int, steady_stations: int = 4) -> dict[str, Scenario]:
    """The three scenarios, ``duration_s`` long, disturbed at a third of the run; ``steady``
    on ``steady_stations`` stations."""
    at = duration_s // 3
    return {
        "steady": Scenario("steady", duration_s, (Phase(0, steady_stations, (1, 1)),)),
        "capacity_drop": Scenario("capacity_drop", duration_s,
                                  (Phase(0, 4, (1, 1)), Phase(at, 4, (1,)))),
        "demand_rise": Scenario("demand_rise", duration_s,
                                (Phase(0, 2, (1, 1)), Phase(at, 4, (1, 1)))),
    }


def real_config(root: Path, controller: str) -> Config:
    """The demo on private ipc sockets under ``root``, 2 local workers, ``controller``."""
    kind = "static" if controller.startswith("static") else controller
    return config_from_dict({
        "data_dir": str(root / "data"),
        "controller": {"kind": kind, "interval_s": 1.0},
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock", "local_workers": 2},
    })


def run_real(controller: str, scenario: Scenario, *, start_timeout_s: float = 120.0,
             subscriber: Callable[[Any], None] | None = None) -> Run:
    """One controller on one scenario in a real Engine (``subscriber`` gets its events)."""
    from edgeapp.engine.engine import Engine

    root = Path(tempfile.mkdtemp(prefix="ea-bench-", dir="/tmp"))  # ipc paths must be short
    try:
        config = real_config(root, controller)
        config = dataclasses.replace(config, stations=bench_stations(
            config, max(p.stations for p in scenario.phases)))
        first = scenario.phases[0].stations
        later = config.stations[first:scenario.phase(scenario.duration_s).stations]
        engine = Engine(dataclasses.replace(config, stations=config.stations[:first]))
        if subscriber is not None:
            engine.subscribe(subscriber)
        engine.start()
        try:
            if controller == "static-max":
                engine.set_override(fps=0, resolution=0, grade="high")
            _wait_ready(engine, start_timeout_s)
            return _drive(engine, controller, scenario, later)
        finally:
            engine.stop(timeout=30, finish_orders=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(engine: Any, timeout_s: float) -> None:
    """Until the controller is built and frames come through."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = engine.status()
        if status.control.ready and (status.fps or 0.0) > 0:
            return
        time.sleep(0.5)
    raise EdgeAppError(f"the engine did not start its controller and frames in {timeout_s} s")


def _drive(engine: Any, controller: str, scenario: Scenario, later: Any) -> Run:
    run = Run(controller, scenario, engine.space)
    disturbed = False
    start = time.monotonic()
    for t in range(scenario.duration_s):
        time.sleep(max(0.0, start + t + 1 - time.monotonic()))
        if not disturbed and t + 1 >= (scenario.disturbances or (scenario.duration_s + 1,))[0]:
            disturbed = True
            if scenario.name == "capacity_drop":
                pid = engine.status().workers[0].pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            for station in later:
                engine.add_station(station)
        status = engine.status()
        run.parameters.append(engine.parameters)
        run.states.append({s.name: s.state for s in status.slos})
    step_p99 = engine.status().control.step_ms_p99
    run.step_s.extend([] if step_p99 is None else [step_p99 / 1000.0])
    return run


def bench_controller_real(scenarios: list[str] | None = None, *, duration_s: int = 60,
                          controllers: tuple[str, ...] = REAL_CONTROLLERS,
                          best_fixed: tuple[StreamParameters, int | None] | None = None
                          ) -> list[dict[str, Any]]:
    """Every controller on every real scenario (or the ones named). With ``best_fixed``
    (the setting and the station count it was found for), each row also has the
    controller's quality as a share of that setting's (``quality_ratio``); ``steady`` then
    runs on that many stations, so that its row compares like with like."""
    table = real_scenarios(duration_s, (best_fixed[1] or 4) if best_fixed else 4)
    rows = []
    for name in controllers:
        for scenario in (table[s] for s in scenarios or table):
            run = run_real(name, scenario)
            row = {**summarise(run), "real": True, "duration_s": duration_s,
                   "stations": scenario.phase(scenario.duration_s).stations}
            if best_fixed is not None:
                setting, stations = best_fixed
                best_q = run.space.quality(run.space.clamp(setting))
                row["best_fixed"] = {"fps_level": setting.fps_level,
                                     "resolution_level": setting.resolution_level,
                                     "grade": setting.grade.name.lower(),
                                     "quality": round(best_q, 3), "stations": stations}
                row["quality_ratio"] = round(row["quality"] / best_q, 3) if best_q else None
            print(json.dumps(row), file=sys.stderr, flush=True)  # minutes each: progress
            rows.append(row)
    return rows
