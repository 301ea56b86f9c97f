"""The controller's yardstick: the best fixed setting, and a controller's quality as a share
of it.

- Simulator: for each phase of a scenario, every setting of the space held fixed (static
  controller) through the same seeded scenario; the phase's best fixed setting is the highest
  quality one (on a tie the cheaper) whose SLOs are met in at least 99 % of the phase's steps.
  A controller's ``quality_ratio`` in a phase is its mean quality there over that setting's.
- Real pipeline: the best fixed setting that ``edgeapp bench capacity`` found (its file), or
  one the operator names (``--best-fixed FPS,RES,GRADE``: levels and a grade).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import SloState, StreamParameters
from edgeapp.engine.control.elasticity import ElasticityController
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.simulator import Scenario
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import UsageError

SLO_BAR = 0.99


def phase_steps(scenario: Scenario) -> list[tuple[int, int]]:
    """``(start, end)`` steps of each phase."""
    bounds = [p.at_s for p in scenario.phases] + [scenario.duration_s]
    return list(zip(bounds, bounds[1:], strict=False))


def fixed_setting_figures(scenario: Scenario, slo: SloConfig, stream: StreamConfig,
                          seed: int = 0) -> dict[StreamParameters, list[float]]:
    """Per setting held fixed: the share of each phase's steps with no CRITICAL SLO.

    Settings go cheapest first; one at or above a setting that missed the bar in every
    phase, in every parameter, is not simulated (more work per frame on the same seeded
    load cannot meet a bar that less work missed) and counts as missing it everywhere.
    """
    from edgeapp.engine.bench.controller import simulate

    space = ParameterSpace.from_config(stream)
    phases = phase_steps(scenario)
    out: dict[StreamParameters, list[float]] = {}
    hopeless: list[tuple[int, ...]] = []
    for params in sorted(space.all(), key=lambda p: sum(space.ranks(p))):
        ranks = space.ranks(params)
        if any(all(a >= b for a, b in zip(ranks, low, strict=True)) for low in hopeless):
            out[params] = [0.0] * len(phases)
            continue
        control = ElasticityController(slo, stream, "static", initial=params)
        run = simulate(control, "static", scenario, seed=seed)
        met = [SloState.CRITICAL not in s.values() for s in run.states]
        out[params] = [sum(met[a:b]) / (b - a) for a, b in phases]
        if all(share < SLO_BAR for share in out[params]):
            hopeless.append(ranks)
    return out


def best_fixed_per_phase(scenario: Scenario, slo: SloConfig, stream: StreamConfig,
                         seed: int = 0) -> list[StreamParameters | None]:
    """Each phase's best fixed setting (None where no setting meets the bar)."""
    space = ParameterSpace.from_config(stream)
    figures = fixed_setting_figures(scenario, slo, stream, seed)
    best: list[StreamParameters | None] = []
    for k in range(len(scenario.phases)):
        good = [p for p, shares in figures.items() if shares[k] >= SLO_BAR]
        best.append(max(good, key=lambda p: (space.quality(p), -space.relative_compute(p)))
                    if good else None)
    return best


def phase_ratios(parameters: list[StreamParameters], scenario: Scenario, space: ParameterSpace,
                 best: list[StreamParameters | None]) -> list[dict[str, Any]]:
    """Per phase: the controller's mean quality, the best fixed setting's, their ratio."""
    rows = []
    for (a, b), phase, fixed in zip(phase_steps(scenario), scenario.phases, best, strict=True):
        quality = statistics.mean(space.quality(p) for p in parameters[a:b])
        best_q = space.quality(fixed) if fixed is not None else None
        rows.append({
            "at_s": a, "stations": phase.stations, "cores": sum(phase.workers),
            "quality": round(quality, 3),
            "best_fixed": None if fixed is None else {
                "fps_level": fixed.fps_level, "resolution_level": fixed.resolution_level,
                "grade": fixed.grade.name.lower(), "quality": round(best_q or 0.0, 3)},
            "quality_ratio": round(quality / best_q, 3) if best_q else None})
    return rows


def parse_best_fixed(text: str) -> StreamParameters:
    """``"1,0,medium"`` -> FPS level 1, resolution level 0, MEDIUM."""
    parts = [p.strip() for p in text.split(",")]
    try:
        fps, res, grade = parts
        return StreamParameters(int(fps), int(res), Grade.parse(grade))
    except ValueError as exc:
        raise UsageError(f"--best-fixed: expected FPS level, resolution level and grade, "
                         f"e.g. 1,0,medium; got {text!r}") from exc


def best_fixed_from_file(path: Path) -> tuple[StreamParameters, int]:
    """The best fixed setting and its station count from a ``bench capacity`` file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--capacity {path}: cannot read it as a capacity result: "
                         f"{exc}") from exc
    best = data.get("best_fixed") if isinstance(data, dict) else None
    if not best:
        raise UsageError(f"--capacity {path}: it holds no best fixed setting (the search "
                         "found none, or was cancelled first); name one with --best-fixed")
    return (StreamParameters(best["fps_level"], best["resolution_level"],
                             Grade.parse(best["grade"])), int(best["stations"]))
