"""``edgeapp bench capacity``: how many stations this machine sustains, and the best fixed
setting for that many.

The bar, for every probe: every SLO met (no CRITICAL) in at least 99 % of the measured
seconds, and verdict accuracy at least 98 % (``--slo-bar``, ``--accuracy-bar``). Accuracy is
judged from a sample, so a probe misses it only when its verdicts show the accuracy is below
the bar with 95 % confidence (``accuracy_bound``): on a one-minute probe of two stations (20
orders) one wrong verdict is 5 %, and a judge right 99 % of the time would miss a bar read
as a plain share in about one probe of five. Each probe is one scenario of the runner (a fresh
Engine, warm-up excluded).

1. Stations, with the AIF controller: probes at 1, 2, 4, 8… stations until one misses the bar
   (or ``--max-stations``), then bisection between the last count that met it and the first
   that did not. The count found is confirmed by a longer run (``--confirm``); when that
   misses, the count below is confirmed instead, and so on.
2. For that count, the best fixed setting (FPS level, resolution level, grade pinned, static
   controller) — the highest quality (the mean of the normalised levels, as the controller
   benchmark counts it) that meets the bar. The lowest setting is probed first: when even it
   misses, no fixed setting meets the bar. Then every probe settles settings without
   running them, on the rule that more work per frame cannot meet a bar that less work
   missed: a miss settles every setting at least as high in every parameter; a setting
   that meets the bar settles every setting of no higher quality (they cannot be the best).
   Each next probe is the open setting that settles the most either way, so the search
   ends in about 10 probes of the 36 settings. The best found is confirmed by a longer run;
   when that misses, the search goes on below it.

Short probes (``--probe``, 60 s) keep the search affordable; they also make it coarse: a
probe of 60 s on a few stations judges a few dozen orders, where one wrong verdict is 2-4 %.
The confirming runs are what the result stands on. Expect 30-60 minutes on a 2-core machine.
The result (every probe's figures too) is written to ``capacity_TIMESTAMP.json``, which
``edgeapp bench controller --real --capacity FILE`` reads for its yardstick.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeapp.config import Config
from edgeapp.engine.api import StreamParameters
from edgeapp.engine.bench.measure import ScenarioResult
from edgeapp.engine.bench.report import summary_row
from edgeapp.engine.bench.runner import BenchmarkRunner, Progress
from edgeapp.engine.bench.scenarios import NOTHING_FIXED, FixedParameters, Scenario
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.errors import UsageError

SLO_BAR = 0.99
ACCURACY_BAR = 0.98


@dataclass(frozen=True)
class Bar:
    """What a probe must meet."""

    slo: float = SLO_BAR
    accuracy: float = ACCURACY_BAR

    def judge(self, result: ScenarioResult) -> tuple[bool, str]:
        """Whether ``result`` meets the bar, and why (or why not) in words."""
        if result.error:
            return False, f"failed: {result.error}"
        if result.cancelled:
            return False, "cancelled"
        slo, acc = result.slo_fulfilment, result.verdict_accuracy
        if slo is None or slo < self.slo:
            return False, f"SLOs met in {_pct(slo)} of seconds (< {self.slo:.0%})"
        if acc is None:
            return False, "no verdict whose truth is known"
        right = f"{result.correct} of {result.judged} right ({_pct(acc, 2)})"
        if acc < self.accuracy:
            bound = accuracy_bound(result.correct or 0, result.judged)
            if bound < self.accuracy:
                return False, (f"{right}: below {self.accuracy:.0%} (at best {_pct(bound)} "
                               "at 95 % confidence)")
            right += (f" (under {self.accuracy:.0%} in this sample, but {result.judged} "
                      f"verdicts cannot show it is: up to {_pct(bound)} at 95 % confidence)")
        return True, f"SLOs met in {_pct(slo)} of seconds, {right}"


def accuracy_bound(right: int, judged: int, z: float = 1.645) -> float:
    """The highest accuracy ``right`` of ``judged`` verdicts are consistent with: the upper
    end of the one-sided 95 % Wilson score interval. A probe misses the accuracy bar only
    when this is below it: on the few dozen orders of a probe one wrong verdict is 2-5 %, so
    the share alone would fail a judge that is as good as the bar asks by chance."""
    if judged <= 0:
        return 1.0
    p, n, z2 = right / judged, judged, z * z
    centre = p + z2 / (2 * n)
    spread = z * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5
    return min(1.0, (centre + spread) / (1 + z2 / n))


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


@dataclass
class CapacitySearch:
    """The search's state: every probe, what it found."""

    config: Config
    bar: Bar = field(default_factory=Bar)
    probe_s: float = 60.0
    confirm_s: float = 180.0
    max_stations: int = 16
    warmup_s: float = 15.0
    cooldown_s: float = 10.0
    local_workers: int | None = None
    vlm_backend: str | None = None
    # A setting that has not brought every station's first frames through in 2 minutes
    # misses the bar; waiting longer only makes the search slower.
    start_timeout_s: float = 120.0
    tell: Callable[[str], None] = lambda line: None
    progress: Callable[[Progress], None] | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _runner: BenchmarkRunner | None = None

    def cancel(self) -> None:
        """Stop at the probe in progress (any thread); what was found so far is kept."""
        self._cancel.set()
        if self._runner is not None:
            self._runner.cancel()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._cancel.is_set()

    # ── probes ───────────────────────────────────────────────────────────────────────────

    def probe(self, stage: str, stations: int, seconds: float,
              fixed: FixedParameters = NOTHING_FIXED) -> tuple[bool, ScenarioResult]:
        """One scenario run, judged and recorded."""
        name = f"{stage}_{stations}st" + (f"_{fixed.label()}" if fixed.any else "")
        scenario = Scenario(name, stations, seconds, controller="aif", fixed=fixed,
                            vlm_backend=self.vlm_backend, local_workers=self.local_workers)
        self._runner = BenchmarkRunner(self.config, [scenario], progress=self.progress,
                                       warmup_s=self.warmup_s, cooldown_s=0.0,
                                       start_timeout_s=self.start_timeout_s)
        if self.cancelled:
            self._runner.cancel()
        report = self._runner.run()
        result = report.results[0] if report.results else ScenarioResult(scenario,
                                                                          cancelled=True)
        met, why = self.bar.judge(result)
        self.probes.append({"stage": stage, "met": met, "why": why, **summary_row(result),
                            "by_status": result.by_status})
        self.tell(f"{name}: {'meets the bar' if met else 'misses'}: {why} "
                  f"({result.orders} orders, quality {result.quality})")
        if not self.cancelled:
            self._cancel.wait(self.cooldown_s)
        return met, result

    # ── 1. stations ──────────────────────────────────────────────────────────────────────

    def stations(self) -> tuple[int, ScenarioResult | None]:
        """The most stations that meet the bar with the AIF (0: not even one), and the
        confirming run."""
        met: dict[int, bool] = {}
        n = 1
        while n <= self.max_stations and not self.cancelled:
            met[n] = self.probe("aif", n, self.probe_s)[0]
            if not met[n]:
                break
            n *= 2
        good = max((k for k, ok in met.items() if ok), default=0)
        bad = min((k for k, ok in met.items() if not ok), default=self.max_stations + 1)
        while bad - good > 1 and not self.cancelled:
            mid = (good + bad) // 2
            if self.probe("aif", mid, self.probe_s)[0]:
                good = mid
            else:
                bad = mid
        while good > 0 and not self.cancelled:
            ok, result = self.probe("aif_confirm", good, self.confirm_s)
            if ok:
                return good, result
            good -= 1
        return good, None

    # ── 2. the best fixed setting ────────────────────────────────────────────────────────

    def best_fixed(self, stations: int, space: ParameterSpace
                   ) -> tuple[StreamParameters | None, ScenarioResult | None]:
        """The highest-quality fixed setting that meets the bar on ``stations`` (see the
        module docstring)."""
        quality = space.quality
        met: list[StreamParameters] = []
        missed: list[StreamParameters] = []

        def meets(params: StreamParameters, stage: str = "fixed",
                  seconds: float | None = None) -> tuple[bool, ScenarioResult]:
            fixed = FixedParameters(params.fps_level, params.resolution_level,
                                    params.grade.name.lower())
            ok, result = self.probe(stage, stations, seconds or self.probe_s, fixed)
            (met if ok else missed).append(params)
            return ok, result

        if not meets(space.lowest())[0]:
            return None, None  # when even the lowest misses, no fixed setting meets it
        while met and not self.cancelled:
            best = max(met, key=quality)
            open_ = [p for p in space.all() if quality(p) > quality(best)
                     and not any(_at_least(space, p, m) for m in missed)]
            if open_:
                def split(p: StreamParameters, open_: list[StreamParameters] = open_
                          ) -> tuple[int, float]:
                    settled_if_met = sum(quality(c) <= quality(p) for c in open_)
                    settled_if_missed = sum(_at_least(space, c, p) for c in open_)
                    return min(settled_if_met, settled_if_missed), quality(p)
                meets(max(open_, key=split))
                continue
            met.remove(best)
            ok, result = meets(best, "fixed_confirm", self.confirm_s)
            if ok:
                return best, result
        return None, None


def _at_least(space: ParameterSpace, params: StreamParameters, other: StreamParameters) -> bool:
    """True when ``params`` is at ``other``'s level or higher in every parameter."""
    return all(a >= b for a, b in zip(space.ranks(params), space.ranks(other), strict=True))


def setting_dict(space: ParameterSpace, params: StreamParameters) -> dict[str, Any]:
    """A fixed setting as plain data: levels, fractions, quality."""
    return {"fps_level": params.fps_level, "resolution_level": params.resolution_level,
            "grade": params.grade.name.lower(), "fps": space.fps_fraction(params),
            "resolution": space.resolution_scale(params),
            "quality": round(space.quality(params), 4)}


def run_capacity(search: CapacitySearch, out_dir: Path) -> dict[str, Any]:
    """Both stages; the result, also written to ``out_dir/capacity_TIMESTAMP.json``."""
    from edgeapp.engine.engine_setup import model_grades

    space = ParameterSpace.from_config(search.config.stream, model_grades(search.config))
    started = time.monotonic()
    count, aif = search.stations()
    best, fixed = (search.best_fixed(count, space) if count else (None, None))
    aif_quality = aif.quality if aif is not None else None
    best_quality = space.quality(best) if best is not None else None
    result = {
        "stations": count,
        "bar": {"slo_fulfilment": search.bar.slo, "verdict_accuracy": search.bar.accuracy},
        "aif": None if aif is None else {**summary_row(aif), "by_status": aif.by_status},
        "best_fixed": None if best is None else {
            **setting_dict(space, best), "stations": count,
            "run": {**summary_row(fixed), "by_status": fixed.by_status} if fixed else None},
        "aif_quality": aif_quality,
        "aif_quality_ratio": (round(aif_quality / best_quality, 3)
                              if aif_quality is not None and best_quality else None),
        "probe_s": search.probe_s, "confirm_s": search.confirm_s,
        "max_stations": search.max_stations, "cancelled": search.cancelled,
        "elapsed_min": round((time.monotonic() - started) / 60, 1),
        "probes": search.probes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"capacity_{time.strftime('%Y%m%d_%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    result["file"] = str(path)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI options of ``edgeapp bench capacity``."""
    from edgeapp.engine.bench.stations import add_scenario_arguments

    parser.add_argument("--probe", type=float, default=60.0, metavar="S",
                        help="measured seconds of each probe (default 60)")
    parser.add_argument("--confirm", type=float, default=180.0, metavar="S",
                        help="measured seconds of each confirming run (default 180)")
    parser.add_argument("--max-stations", type=int, default=16, metavar="N",
                        help="most stations tried (default 16)")
    parser.add_argument("--slo-bar", type=float, default=SLO_BAR, metavar="F",
                        help=f"share of seconds every SLO must be met (default {SLO_BAR})")
    parser.add_argument("--accuracy-bar", type=float, default=ACCURACY_BAR, metavar="F",
                        help=f"share of verdicts that must be right (default {ACCURACY_BAR})")
    add_scenario_arguments(parser)


def run_capacity_bench(args: argparse.Namespace) -> dict[str, Any]:
    """``edgeapp bench capacity``."""
    import signal

    from edgeapp.engine.bench.stations import ProgressBar

    for name in ("probe", "confirm"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name} must be > 0 s, got {getattr(args, name)}")
    if args.max_stations < 1:
        raise UsageError(f"--max-stations must be at least 1, got {args.max_stations}")
    for name in ("slo_bar", "accuracy_bar"):
        if not 0 < getattr(args, name) <= 1:
            raise UsageError(f"--{name.replace('_', '-')} must be in (0, 1], "
                             f"got {getattr(args, name)}")

    def tell(line: str) -> None:
        print(f"\n{line}" if sys.stderr.isatty() else line, file=sys.stderr, flush=True)

    search = CapacitySearch(getattr(args, "cfg", None) or Config(),
                            Bar(args.slo_bar, args.accuracy_bar), probe_s=args.probe,
                            confirm_s=args.confirm, max_stations=args.max_stations,
                            warmup_s=args.warmup, cooldown_s=args.cooldown,
                            local_workers=args.local_workers, vlm_backend=args.vlm_backend,
                            tell=tell, progress=ProgressBar())
    previous = signal.signal(signal.SIGINT, lambda *_: search.cancel())
    try:
        return run_capacity(search, args.out)
    finally:
        signal.signal(signal.SIGINT, previous)


def format_text(result: dict[str, Any]) -> str:
    """The capacity found, in two lines (without ``--json``)."""
    best = result["best_fixed"]
    lines = [f"stations sustained with the AIF: {result['stations']} "
             f"(SLOs met >= {result['bar']['slo_fulfilment']:.0%} of seconds, verdicts right "
             f">= {result['bar']['verdict_accuracy']:.0%})"]
    lines.append("best fixed setting: none meets the bar" if best is None else
                 f"best fixed setting: FPS {best['fps']}, resolution {best['resolution']}, "
                 f"{best['grade']} (quality {best['quality']}); the AIF reached "
                 f"{result['aif_quality']} = {result['aif_quality_ratio']} of it")
    if result["cancelled"]:
        lines.append("cancelled: the search stopped early")
    lines.append(f"probes: {len(result['probes'])}, {result['elapsed_min']} min; "
                 f"file: {result['file']}")
    return "\n".join(lines)
