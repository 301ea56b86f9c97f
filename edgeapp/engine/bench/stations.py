"""``edgeapp bench stations``: the scenario runner from the command line.

``--stations 1,2,4`` runs one scenario per count, ``--standard`` the standard set (1, 2, 4, 6,
8 stations); every scenario runs ``--duration`` measured seconds after its warm-up. The
report (JSON, CSV, PNG plots, each scenario's results store) goes to ``--out``; the summary
is printed (one JSON object with ``--json``), a progress bar goes to stderr. Ctrl+C ends the
run at the next second and still writes what was measured.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from edgeapp.config import Config
from edgeapp.engine.bench.runner import BenchmarkReport, BenchmarkRunner, Progress
from edgeapp.engine.bench.scenarios import (
    CONTROLLER_KINDS,
    VLM_BACKENDS,
    FixedParameters,
    Scenario,
    parse_stations,
    standard_set,
)
from edgeapp.errors import UsageError

DEFAULT_OUT = Path("benchmark_results")


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape every scenario (shared with ``bench capacity``)."""
    parser.add_argument("--warmup", type=float, default=15.0, metavar="S",
                        help="seconds of frames before measuring starts (default 15)")
    parser.add_argument("--cooldown", type=float, default=10.0, metavar="S",
                        help="seconds between scenarios (default 10)")
    parser.add_argument("--local-workers", type=int, default=None, metavar="K",
                        help="local inference workers (default: the config's)")
    parser.add_argument("--vlm-backend", choices=VLM_BACKENDS, default=None,
                        help="the VLM backend (default: the config's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"results folder (default ./{DEFAULT_OUT})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI options of ``edgeapp bench stations``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stations", metavar="N,N,…", default=None,
                       help="one scenario per station count, e.g. 1,2,4")
    which.add_argument("--standard", action="store_true",
                       help="the standard set: 1, 2, 4, 6, 8 stations")
    parser.add_argument("--duration", type=float, default=60.0, metavar="S",
                        help="measured seconds per scenario (default 60)")
    parser.add_argument("--controller", choices=CONTROLLER_KINDS, default="aif",
                        help="who sets the stream parameters (default aif)")
    parser.add_argument("--grade", choices=("low", "medium", "high"), default=None,
                        help="the grade the streams start at (default: the config's)")
    parser.add_argument("--fps-level", type=int, default=None, metavar="L",
                        help="pin the FPS level (0 = the camera's rate) for the whole run")
    parser.add_argument("--resolution-level", type=int, default=None, metavar="L",
                        help="pin the resolution level (0 = the camera's size)")
    parser.add_argument("--fixed-grade", choices=("low", "medium", "high"), default=None,
                        help="pin the model grade")
    add_scenario_arguments(parser)


def scenarios_from_args(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios the options ask for (``UsageError`` for a bad combination)."""
    if not args.duration > 0:
        raise UsageError(f"--duration must be > 0 s, got {args.duration}")
    fixed = FixedParameters(args.fps_level, args.resolution_level, args.fixed_grade)
    options: dict[str, Any] = {"controller": args.controller, "grade": args.grade,
                               "fixed": fixed, "vlm_backend": args.vlm_backend,
                               "local_workers": args.local_workers}
    if args.standard:
        return standard_set(args.duration, **options)
    if args.stations is None:
        raise UsageError("bench stations: say which scenarios: --stations 1,2,4 or --standard")
    return [Scenario(f"scale_{n}_stations", n, args.duration, **options)
            for n in parse_stations(args.stations)]


def check_levels(config: Config, fixed: FixedParameters) -> None:
    """A pinned level outside the config's lists is a usage error, said before anything runs."""
    for name, level, levels in (("--fps-level", fixed.fps_level, config.stream.fps_levels),
                                ("--resolution-level", fixed.resolution_level,
                                 config.stream.resolution_levels)):
        if level is not None and not 0 <= level < len(levels):
            raise UsageError(f"{name} {level}: the config has levels 0-{len(levels) - 1} "
                             f"({', '.join(str(v) for v in levels)})")


class ProgressBar:
    """One self-rewriting line on a terminal; a line every 10 s elsewhere (a log file)."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last: tuple[str, str] | None = None
        self._last_t = -10.0

    def __call__(self, p: Progress) -> None:
        width = 30
        filled = round(p.fraction * width)
        text = (f"[{'#' * filled}{'.' * (width - filled)}] {p.fraction:4.0%}  "
                f"{p.index + 1}/{p.count} {p.scenario}: {p.stage}")
        if p.stage == "measuring":
            text += f" {p.elapsed_s:.0f}/{p.duration_s:.0f} s"
            if p.sample is not None:
                s = p.sample
                fps = "n/a" if s.frames_per_s is None else f"{s.frames_per_s:.0f}"
                cpu = "n/a" if s.cpu_percent is None else f"{s.cpu_percent:.0f} %"
                text += f"  {fps} frames/s  {s.orders} orders  CPU {cpu}"
        if p.result is not None and p.result.error:
            text += f"  ERROR: {p.result.error}"
        key = (p.scenario, p.stage)
        if self.tty:
            self.out.write("\r\033[K" + text + ("\n" if p.stage == "done" else ""))
            self.out.flush()
        elif key != self._last or p.elapsed_s - self._last_t >= 10 or p.stage == "done":
            self.out.write(text + "\n")
            self.out.flush()
            self._last_t = p.elapsed_s
        self._last = key


def run_benchmark(config: Config, scenarios: list[Scenario], args: argparse.Namespace,
                  ) -> BenchmarkReport:
    """Run ``scenarios`` with a progress bar; Ctrl+C cancels (what was measured is kept)."""
    runner = BenchmarkRunner(config, scenarios, out_dir=args.out, progress=ProgressBar(),
                             warmup_s=args.warmup, cooldown_s=args.cooldown)
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(_signum: int, _frame: Any) -> None:
            print("\ncancelling: the scenario in progress ends at its next second",
                  file=sys.stderr, flush=True)
            runner.cancel()
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return runner.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def run_stations_bench(args: argparse.Namespace) -> dict[str, Any]:
    """``edgeapp bench stations``."""
    from edgeapp.engine.bench.report import summary

    config: Config = getattr(args, "cfg", None) or Config()
    scenarios = scenarios_from_args(args)
    check_levels(config, scenarios[0].fixed)
    for name in ("warmup", "cooldown"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} must be >= 0 s, got {getattr(args, name)}")
    return summary(run_benchmark(config, scenarios, args))


def format_text(result: dict[str, Any]) -> str:
    """The summary as an aligned table (without ``--json``)."""
    rows = result["scenarios"]

    def show(value: Any, pattern: str) -> str:
        return "n/a" if value is None or value == "" else pattern.format(value)

    lines = [f"{'scenario':<20} {'orders/s':>8} {'frames/s':>8} {'lat avg':>7} {'p50':>6} "
             f"{'p95':>6} {'p99':>6} {'checked':>7} {'right':>6} {'SLO met':>7} "
             f"{'CPU avg/max':>11} {'GPU':>5}"]
    for r in rows:
        cpu = f"{show(r['cpu_avg'], '{:.0f}')}/{show(r['cpu_max'], '{:.0f}')}%"
        lines.append(
            f"{r['scenario']:<20} {show(r['orders_per_s'], '{:.3f}'):>8} "
            f"{show(r['frames_per_s'], '{:.1f}'):>8} {show(r['latency_avg_s'], '{:.2f}s'):>7} "
            f"{show(r['latency_p50_s'], '{:.2f}'):>6} {show(r['latency_p95_s'], '{:.2f}'):>6} "
            f"{show(r['latency_p99_s'], '{:.2f}'):>6} {show(r['success_rate'], '{:.1%}'):>7} "
            f"{show(r['verdict_accuracy'], '{:.1%}'):>6} "
            f"{show(r['slo_fulfilment'], '{:.1%}'):>7} {cpu:>11} "
            f"{show(r['gpu_avg'], '{:.0f}%'):>5}"
            + (f"  ERROR: {r['error']}" if r["error"] else "")
            + ("  (cancelled)" if r["cancelled"] else ""))
    if result["cancelled"]:
        lines.append("cancelled: the figures above cover what was measured")
    lines += [f"{k}: {v}" for k, v in result["files"].items()]
    return "\n".join(lines)
