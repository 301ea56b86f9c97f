"""Parameter levels, the simulator's measured costs and scenarios, and the benchmark's figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeapp.commands.bench_cmd import BENCHES
from edgeapp.config.schema import StreamConfig
from edgeapp.engine.api import StreamParameters
from edgeapp.engine.bench.controller import bench_controller
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.simulator import SCENARIOS, DetectorCosts, Simulator
from edgeapp.engine.vision.grades import Grade

SPACE = ParameterSpace.from_config(StreamConfig())


def test_levels_come_from_the_config_and_steps_clamp() -> None:
    space = ParameterSpace.from_config(StreamConfig(fps_levels=(1.0, 0.5),
                                                    resolution_levels=(1.0, 0.75, 0.5)))
    top = space.highest()
    assert top == StreamParameters(0, 0, Grade.HIGH)
    assert space.step(top, (1, 1, 1)) == top, "up at the top stays"
    assert space.step(top, (-1, -1, -1)) == StreamParameters(1, 1, Grade.MEDIUM)
    assert space.step(space.lowest(), (-1, -1, -1)) == space.lowest()
    assert space.fps_fraction(space.lowest()) == 0.5
    assert space.initial(StreamConfig(grade="medium")).grade == Grade.MEDIUM


def test_a_space_holds_only_the_grades_with_a_model() -> None:
    # Given only the LOW and HIGH grades installed
    space = ParameterSpace.from_config(StreamConfig(), (Grade.HIGH, Grade.LOW))
    # Then MEDIUM is served by the nearest lower grade, and grades step LOW <-> HIGH
    assert space.shape == (4, 3, 2)
    assert space.nearest_grade(Grade.MEDIUM) == Grade.LOW
    assert space.step(space.lowest(), (0, 0, 1)).grade == Grade.HIGH
    assert space.initial(StreamConfig(grade="medium")).grade == Grade.LOW
    # and with one grade, moving it is no move and it counts as full quality
    only = ParameterSpace.from_config(StreamConfig(), (Grade.LOW,))
    assert only.step(only.highest(), (0, 0, -1)) == only.highest()
    assert only.quality(only.highest()) == 1.0
    assert only.ranks(StreamParameters(0, 0, Grade.HIGH)) == only.ranks(only.highest())


def test_quality_is_the_mean_of_the_normalised_levels() -> None:
    assert SPACE.quality(SPACE.highest()) == 1.0
    assert SPACE.quality(SPACE.lowest()) == 0.0
    # one FPS step of four levels (1/3) down, the rest at the top
    assert SPACE.quality(StreamParameters(1, 0, Grade.HIGH)) == pytest.approx(8 / 9)
    assert SPACE.quality(StreamParameters(0, 1, Grade.MEDIUM)) == pytest.approx(2 / 3)


def test_costs_are_the_measured_ones_scaled_by_model_size() -> None:
    costs = DetectorCosts.load()
    assert set(costs.cpu_ms) == {320, 256, 224, 192, 160}
    assert costs.input_size(0.75) == 224, "240 rounds down to a multiple of 32"
    n = costs.frame_ms(1.0, Grade.LOW)
    assert n == costs.cpu_ms[320]
    assert costs.frame_ms(1.0, Grade.HIGH) == pytest.approx(n * 68.0 / 6.5)
    assert costs.frame_ms(0.5, Grade.LOW) < costs.frame_ms(0.75, Grade.LOW) < n


def test_simulator_is_seeded() -> None:
    def samples(seed: int) -> list[object]:
        sim = Simulator(SCENARIOS["demand_rise"], SPACE, seed=seed)
        return [sim.step(SPACE.highest()) for _ in range(50)]

    assert samples(7) == samples(7)
    assert samples(7) != samples(8)


def test_losing_a_worker_overloads_a_setting_that_was_fine() -> None:
    setting = StreamParameters(1, 0, Grade.HIGH)
    sim = Simulator(SCENARIOS["capacity_drop"], SPACE, seed=0)
    latency = [sim.step(setting).frame_latency_p95_ms or 0.0 for _ in range(400)]
    # (a rare dip in capacity may spike one step: look at the bulk, not the extremes)
    assert np.percentile(latency[100:300], 95) < 400, "fine before the drop"
    assert np.percentile(latency[330:400], 5) > 500, "over the budget once the worker left"


def test_benchmark_figures_of_the_static_ends() -> None:
    assert BENCHES["controller"][:2] == ("edgeapp.engine.bench.controller",
                                         "run_controller_bench")
    rows = bench_controller(["capacity_drop"], controllers=("static-max", "static-min"))
    top, bottom = rows
    assert (top["controller"], top["scenario"]) == ("static-max", "capacity_drop")
    assert top["quality"] == 1.0 and top["slo_fulfilment"] < 0.5
    assert top["changes_per_min"] == 0
    assert top["recovery_s"] > 300, "it recovers only once the worker is back (t = 600 s)"
    assert bottom["quality"] == 0.0 and bottom["slo_fulfilment"] == 1.0
    assert bottom["recovery_s"] == 0
    assert set(top) == {"controller", "scenario", "slo_fulfilment", "quality",
                        "changes_per_min", "recovery_s", "step_ms_p99", "phases"}
    # the yardstick, per phase: the best fixed setting that meets the SLOs there
    full, dropped, back = top["phases"]
    assert (full["at_s"], dropped["at_s"], back["at_s"]) == (0, 300, 600)
    assert dropped["cores"] < full["cores"]
    assert dropped["best_fixed"]["quality"] < full["best_fixed"]["quality"], \
        "with a worker gone the best setting that fits is a lower one"
    assert full["quality_ratio"] > 1.0, "static max runs above what fits"
    assert all(p["quality_ratio"] == 0.0 for p in bottom["phases"])


def test_the_bench_command_runs_one_controller_and_refuses_what_real_cannot_run(
        capsys: pytest.CaptureFixture[str]) -> None:
    from edgeapp.cli import main

    assert main(["bench", "controller", "--json", "--controller", "heuristic",
                 "--scenario", "steady"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["controller"], row["scenario"]) == ("heuristic", "steady")
    assert main(["bench", "controller", "--real", "--controller", "static-min"]) == 64
    assert "--real runs aif, heuristic, static-max" in capsys.readouterr().err
    assert main(["bench", "controller", "--best-fixed", "1,0,low"]) == 64
    assert "go with --real" in capsys.readouterr().err
    assert main(["bench", "controller", "--real", "--best-fixed", "1,low"]) == 64
    assert "e.g. 1,0,medium" in capsys.readouterr().err
