"""Plot one simulated controller run: parameter levels, SLO states and load over time.

``python -m edgeapp.engine.bench.controller_plot [--controller aif] [--scenario NAME]
[--seed N] [--out docs/controller_run.png]``. Needs matplotlib, which edgeapp does not depend
on: it is imported here only, and only its Agg canvas (no pyplot, so no GUI backend, no Qt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import Slo
from edgeapp.engine.bench.controller import CONTROLLERS, Run, controller_for, simulate, summarise
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.simulator import SCENARIOS
from edgeapp.errors import MissingExtraError

_STATE_COLOURS = ("#4caf50", "#ffb300", "#e53935")  # OK, WARNING, CRITICAL


def plot_run(run: Run, space: ParameterSpace, path: Path, title: str) -> None:
    """Write ``run`` as a three-panel PNG to ``path``."""
    try:
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise MissingExtraError("the plot needs matplotlib: pip install matplotlib") from exc

    t = np.arange(len(run.parameters))
    ranks = np.array([space.ranks(p) for p in run.parameters], dtype=float)
    norm = ranks / (np.array(space.shape) - 1)
    fig = Figure(figsize=(11, 7.5), dpi=110, layout="constrained")
    top, mid, low = fig.subplots(3, 1, sharex=True, height_ratios=[3, 1.4, 1.4])
    for k, (name, offset) in enumerate((("FPS", 0.02), ("resolution", 0.0), ("grade", -0.02))):
        top.step(t, norm[:, k] + offset, where="post", label=name, linewidth=1.4)
    top.plot(t, [space.quality(p) for p in run.parameters], color="black", linewidth=0.8,
             linestyle=":", label="quality (mean)")
    top.set_ylabel("level (0 lowest, 1 highest)")
    top.set_ylim(-0.08, 1.08)
    top.legend(loc="lower left", ncol=4, fontsize=8)
    top.set_title(title, fontsize=10)
    states = np.array([[run.states[i][slo] for i in range(len(t))] for slo in Slo])
    mid.imshow(states, aspect="auto", interpolation="nearest", cmap=ListedColormap(_STATE_COLOURS),
               vmin=0, vmax=2, extent=(0, len(t), len(Slo) - 0.5, -0.5))
    mid.set_yticks(range(len(Slo)), [slo.value.replace("_", " ") for slo in Slo], fontsize=8)
    mid.set_ylabel("SLO state")
    low.plot(t, run.utilisation, color="#555555", linewidth=0.8)
    low.axhline(1.0, color="#e53935", linewidth=0.6, linestyle="--")
    low.set_ylabel("demand / capacity")
    low.set_ylim(0, min(3.0, max(run.utilisation) * 1.05))
    low.set_xlabel("simulated seconds")
    for phase in run.scenario.phases[1:]:
        for ax in (top, mid, low):
            ax.axvline(phase.at_s, color="black", linewidth=0.8, linestyle="--")
        top.annotate(f"{phase.stations} stations, {sum(phase.workers)} cores",
                     (phase.at_s, 1.04), fontsize=8, xytext=(3, 0), textcoords="offset points")
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    """Simulate one run and plot it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controller", choices=CONTROLLERS, default="aif")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="capacity_drop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/controller_run.png"))
    args = parser.parse_args(argv)
    control = controller_for(args.controller, SloConfig(), StreamConfig())
    run = simulate(control, args.controller, SCENARIOS[args.scenario], seed=args.seed)
    figures = summarise(run)
    title = (f"{args.controller} on '{args.scenario}' (seed {args.seed}): SLOs met "
             f"{figures['slo_fulfilment']:.1%} of steps, quality {figures['quality']:.2f}, "
             f"{figures['changes_per_min']} changes/min")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_run(run, control.space, args.out, title)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
