"""The capacity search's decisions: which counts and settings it probes, what it concludes.

The probes here are judged by a rule standing in for the machine (a run of a real Engine per
probe is what ``edgeapp bench capacity`` does; its runner is tested in test_bench_runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeapp.config import Config
from edgeapp.engine.api import StreamParameters
from edgeapp.engine.bench.capacity import Bar, CapacitySearch, accuracy_bound
from edgeapp.engine.bench.measure import ScenarioResult
from edgeapp.engine.bench.scenarios import NOTHING_FIXED, Scenario
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.vision.grades import Grade


class RuleSearch(CapacitySearch):
    """A search whose probes meet the bar by ``rule(stations, fixed, seconds)``."""

    def __init__(self, rule, **kwargs) -> None:
        super().__init__(Config(), cooldown_s=0.0, **kwargs)
        self.rule = rule

    def probe(self, stage, stations, seconds, fixed=NOTHING_FIXED):
        met = self.rule(stations, fixed, seconds)
        self.probes.append({"stage": stage, "stations": stations,
                            "fixed": fixed.label() if fixed.any else None,
                            "seconds": seconds, "met": met})
        return met, ScenarioResult(Scenario(stage, stations, seconds))


def test_stations_double_then_bisect_then_confirm_the_count() -> None:
    search = RuleSearch(lambda n, _f, _s: n <= 5)
    count, confirmed = search.stations()
    assert count == 5 and confirmed is not None
    assert [(p["stage"], p["stations"]) for p in search.probes] == [
        ("aif", 1), ("aif", 2), ("aif", 4), ("aif", 8), ("aif", 6), ("aif", 5),
        ("aif_confirm", 5)]
    assert search.probes[-1]["seconds"] == search.confirm_s > search.probe_s


def test_a_count_whose_confirming_run_misses_steps_down() -> None:
    # 4 stations pass a short probe but not a long run; 3 pass both
    search = RuleSearch(lambda n, _f, s: n <= 3 or (n == 4 and s < 100))
    count, _ = search.stations()
    assert count == 3
    assert [p["stations"] for p in search.probes if p["stage"] == "aif_confirm"] == [4, 3]


def test_not_even_one_station_is_zero_and_no_sweep() -> None:
    search = RuleSearch(lambda n, _f, _s: False)
    assert search.stations() == (0, None)
    assert len(search.probes) == 1


def test_best_fixed_is_the_highest_quality_setting_that_meets_the_bar_with_pruning() -> None:
    space = ParameterSpace((1.0, 0.66, 0.5, 0.33), (1.0, 0.75, 0.5), tuple(Grade))
    budget = 0.3  # the machine: a setting fits when its relative compute is within budget

    def fits(_n, fixed, _s):
        params = StreamParameters(fixed.fps_level, fixed.resolution_level,
                                  Grade.parse(fixed.grade))
        return space.relative_compute(params) <= budget

    search = RuleSearch(fits)
    best, _ = search.best_fixed(4, space)
    feasible = [p for p in space.all() if space.relative_compute(p) <= budget]
    assert best is not None
    assert space.quality(best) == max(space.quality(p) for p in feasible)
    fixed_probes = [p for p in search.probes if p["stage"] == "fixed"]
    assert len(fixed_probes) <= 10, f"{len(fixed_probes)} probes of 36 settings"
    assert fixed_probes[0]["fixed"] == "fps3-res2-low", "the lowest setting first"
    assert search.probes[-1]["stage"] == "fixed_confirm"


def test_no_fixed_setting_when_even_the_lowest_misses() -> None:
    space = ParameterSpace((1.0, 0.5), (1.0, 0.5), tuple(Grade))
    search = RuleSearch(lambda _n, _f, _s: False)
    assert search.best_fixed(2, space) == (None, None)
    assert len(search.probes) == 1


def test_a_best_fixed_setting_whose_confirming_run_misses_gives_way_to_the_next() -> None:
    space = ParameterSpace((1.0, 0.5), (1.0, 0.5), (Grade.LOW,))
    top = StreamParameters(0, 0, Grade.LOW)

    def rule(_n, fixed, seconds):
        params = StreamParameters(fixed.fps_level, fixed.resolution_level, Grade.LOW)
        return params != top or seconds < 100  # the top passes short probes only

    search = RuleSearch(rule)
    best, _ = search.best_fixed(1, space)
    assert best is not None and best != top
    assert space.quality(best) == max(space.quality(p) for p in space.all() if p != top)


def test_the_bar_names_what_was_missed() -> None:
    # 19 of 20 right is 95 %, but 20 verdicts cannot show the judge is below 98 %
    result = ScenarioResult(Scenario("x", 1, 10.0), slo_fulfilment=1.0,
                            verdict_accuracy=0.95, judged=20, correct=19)
    met, why = Bar().judge(result)
    assert met and "19 of 20 right (95.00%) (under 98% in this sample" in why, why
    assert accuracy_bound(19, 20) == pytest.approx(0.9887, abs=1e-4)
    # 190 of 200 can: at best 97.0 %
    result.judged, result.correct, result.verdict_accuracy = 200, 190, 0.95
    met, why = Bar().judge(result)
    assert not met and why == ("190 of 200 right (95.00%): below 98% (at best 97.0% at 95 "
                               "% confidence)"), why
    assert accuracy_bound(0, 0) == 1.0 and accuracy_bound(5, 5) == pytest.approx(1.0)
    assert accuracy_bound(0, 50) < 0.06
    result.slo_fulfilment = 0.9
    assert Bar().judge(result) == (False, "SLOs met in 90.0% of seconds (< 99%)")
    result.slo_fulfilment, result.verdict_accuracy = 1.0, 1.0
    assert Bar().judge(result)[0]


def test_the_capacity_file_carries_the_yardstick_to_bench_controller_real(tmp_path) -> None:
    # Given a search whose machine fits 3 stations, and settings up to a compute budget
    from edgeapp.engine.bench.capacity import run_capacity
    from edgeapp.engine.bench.yardstick import best_fixed_from_file

    def rule(n, fixed, _s):
        if not fixed.any:
            return n <= 3
        params = StreamParameters(fixed.fps_level, fixed.resolution_level,
                                  Grade.parse(fixed.grade))
        return n <= 3 and search_space.relative_compute(params) <= 0.4

    search = RuleSearch(rule)
    from edgeapp.engine.engine_setup import model_grades
    search_space = ParameterSpace.from_config(search.config.stream, model_grades(search.config))

    # When it runs and writes its file
    result = run_capacity(search, tmp_path)

    # Then the file names the count and the best fixed setting, which the real controller
    # bench reads back as its yardstick
    assert result["stations"] == 3
    best = result["best_fixed"]
    setting, stations = best_fixed_from_file(Path(result["file"]))
    assert stations == 3
    assert (setting.fps_level, setting.resolution_level, setting.grade.name.lower()) == (
        best["fps_level"], best["resolution_level"], best["grade"])
    assert best["quality"] == round(search_space.quality(setting), 4)
    assert json.loads(Path(result["file"]).read_text())["probes"] == result["probes"]


def test_a_capacity_file_without_a_best_setting_is_refused_in_one_line(tmp_path) -> None:
    from edgeapp.engine.bench.yardstick import best_fixed_from_file
    from edgeapp.errors import UsageError

    path = tmp_path / "capacity.json"
    path.write_text(json.dumps({"stations": 0, "best_fixed": None}))
    with pytest.raises(UsageError, match="holds no best fixed setting"):
        best_fixed_from_file(path)
