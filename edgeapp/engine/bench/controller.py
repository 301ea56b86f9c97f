"""``edgeapp bench controller``: each controller on each simulated scenario, same seeds.

Every controller is driven exactly as the Engine drives it — an
:class:`ElasticityController` fed one :class:`MetricsSample` per simulated second — against
:mod:`edgeapp.engine.control.simulator`, whose per-frame costs were measured on this machine.
Per controller and scenario:

- ``slo_fulfilment``: share of steps with no CRITICAL SLO;
- ``quality``: mean over steps of the three normalised levels (0 = lowest, 1 = highest);
- ``changes_per_min``: parameter changes per simulated minute;
- ``recovery_s``: seconds from a capacity drop / demand rise until every SLO is OK and stays
  OK for ``RECOVERED_STEPS`` steps (mean over the scenario's disturbances; ``None`` where the
  scenario has none or the controller never recovers);
- ``step_ms_p99``: wall time of one ``ElasticityController.step`` (SLO monitor + decision).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import Slo, SloState, StreamParameters
from edgeapp.engine.control.elasticity import ElasticityController
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.simulator import SCENARIOS, Scenario, Simulator

CONTROLLERS = ("aif", "heuristic", "static-max", "static-min")
RECOVERED_STEPS = 10


@dataclass
class Run:
    """One controller on one scenario, step by step."""

    controller: str
    scenario: Scenario
    space: ParameterSpace  # the levels the parameters are in (the Engine's, on a real run)
    parameters: list[StreamParameters] = field(default_factory=list)  # in force during a step
    states: list[dict[Slo, SloState]] = field(default_factory=list)
    utilisation: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)


def controller_for(name: str, slo: SloConfig, stream: StreamConfig) -> ElasticityController:
    """The Engine-side controller for a bench name (``static-max`` / ``static-min`` hold)."""
    if name.startswith("static-"):
        space = ParameterSpace.from_config(stream)
        end = space.highest() if name == "static-max" else space.lowest()
        return ElasticityController(slo, stream, "static", initial=end)
    return ElasticityController(slo, stream, name)  # type: ignore[arg-type]


def simulate(control: ElasticityController, name: str, scenario: Scenario, *,
             seed: int = 0) -> Run:
    """Run ``control`` through ``scenario``, one metrics sample per simulated second."""
    sim = Simulator(scenario, control.space, seed=seed)
    run = Run(name, scenario, control.space)
    for _ in range(scenario.duration_s):
        params = control.parameters
        sample = sim.step(params)
        start = time.perf_counter()
        control.step(sample)
        run.step_s.append(time.perf_counter() - start)
        run.parameters.append(params)
        run.states.append({s.slo: s.state for s in control.slo_status})
        run.utilisation.append(sim.utilisation)
    return run


def recovery_s(run: Run) -> float | None:
    """Mean seconds from each disturbance until every SLO stays OK ``RECOVERED_STEPS`` steps."""
    ok = [all(s == SloState.OK for s in states.values()) for states in run.states]
    times = []
    for start in run.scenario.disturbances:
        streak = 0
        for t in range(start, len(ok)):
            streak = streak + 1 if ok[t] else 0
            if streak == RECOVERED_STEPS:
                times.append(t + 1 - RECOVERED_STEPS - start)
                break
        else:
            return None
    return round(statistics.mean(times), 1) if times else None


def summarise(run: Run) -> dict[str, Any]:
    """The benchmark's figures for one run."""
    space = run.space
    steps = len(run.parameters)
    changes = sum(a != b for a, b in zip(run.parameters, run.parameters[1:], strict=False))
    times = sorted(run.step_s)
    return {
        "controller": run.controller, "scenario": run.scenario.name,
        "slo_fulfilment": round(sum(SloState.CRITICAL not in s.values()
                                    for s in run.states) / steps, 4),
        "quality": round(statistics.mean(space.quality(p) for p in run.parameters), 3),
        "changes_per_min": round(changes / (steps / 60), 2),
        "recovery_s": recovery_s(run),
        "step_ms_p99": (round(times[min(len(times) - 1, int(0.99 * len(times)))] * 1000, 3)
                        if times else None),
    }


def bench_controller(scenarios: list[str] | None = None, *, seed: int = 0,
                     controllers: tuple[str, ...] = CONTROLLERS) -> list[dict[str, Any]]:
    """Every controller on every scenario (or the ones named), the same seed for all; each
    row's ``phases`` hold its quality per phase as a share of that phase's best fixed
    setting (:mod:`edgeapp.engine.bench.yardstick`)."""
    from edgeapp.engine.bench.yardstick import best_fixed_per_phase, phase_ratios

    slo, stream = SloConfig(), StreamConfig()
    chosen = [SCENARIOS[s] for s in scenarios or SCENARIOS]
    best = {s.name: best_fixed_per_phase(s, slo, stream, seed) for s in chosen}
    rows = []
    for name in controllers:
        for scenario in chosen:
            control = controller_for(name, slo, stream)
            run = simulate(control, name, scenario, seed=seed)
            rows.append({**summarise(run), "phases": phase_ratios(
                run.parameters, scenario, run.space, best[scenario.name])})
    return rows


def add_arguments(parser) -> None:  # type: ignore[no-untyped-def]
    """CLI options of ``edgeapp bench controller``."""
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default=None,
                        help="one scenario (default: all)")
    parser.add_argument("--controller", choices=CONTROLLERS, default=None,
                        help="one controller (default: all; --real has no static-min)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument("--real", action="store_true",
                        help="run the demo's real pipeline instead of the simulator (minutes)")
    parser.add_argument("--duration", type=int, default=60, metavar="S",
                        help="seconds per real run (--real; default 60)")
    parser.add_argument("--capacity", type=Path, default=None, metavar="FILE",
                        help="--real: a bench capacity result; its best fixed setting is the "
                             "yardstick (quality_ratio) and steady runs its station count")
    parser.add_argument("--best-fixed", default=None, metavar="FPS,RES,GRADE",
                        help="--real: the yardstick setting by hand, e.g. 1,0,medium")


def _yardstick(args) -> tuple[StreamParameters, int | None] | None:  # type: ignore[no-untyped-def]
    """The best fixed setting the ``--real`` rows are measured against, if one was given."""
    from edgeapp.engine.bench.yardstick import best_fixed_from_file, parse_best_fixed
    from edgeapp.errors import UsageError

    if args.capacity is not None and args.best_fixed is not None:
        raise UsageError("give --capacity FILE or --best-fixed, not both")
    if args.capacity is not None:
        return best_fixed_from_file(args.capacity)
    if args.best_fixed is not None:
        return parse_best_fixed(args.best_fixed), None
    return None


def run_controller_bench(args) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """``edgeapp bench controller``."""
    from edgeapp.errors import UsageError

    scenarios = [args.scenario] if args.scenario else None
    if args.real:
        from edgeapp.engine.bench.controller_real import REAL_CONTROLLERS, bench_controller_real

        if args.duration < 6:
            raise UsageError(f"--duration must be at least 6 s, got {args.duration}")
        if args.controller and args.controller not in REAL_CONTROLLERS:
            raise UsageError(f"--controller {args.controller}: --real runs "
                             f"{', '.join(REAL_CONTROLLERS)}")
        return bench_controller_real(scenarios, duration_s=args.duration, controllers=(
            (args.controller,) if args.controller else REAL_CONTROLLERS),
            best_fixed=_yardstick(args))
    if args.capacity is not None or args.best_fixed is not None:
        raise UsageError("--capacity and --best-fixed go with --real (the simulator finds "
                         "its own best fixed setting per phase)")
    return bench_controller(scenarios, seed=args.seed, controllers=(
        (args.controller,) if args.controller else CONTROLLERS))
