"""The benchmark runner: scenarios one after another, each in a fresh Engine, measured.

For each scenario: a scratch folder (ipc sockets, data folder), a new Engine started on it,
the warm-up — until the controller is built, every station's first frames are through, and
``warmup_s`` more seconds have passed (the workers compile every grade's model at every input
size in the background at start; that CPU is not the pipeline's) — then ``duration_s``
measured seconds, one sample a second (:mod:`edgeapp.engine.bench.measure`); the Engine
stops, the orders of the window are read back from its results store, and the store is kept
beside the report. Between scenarios the machine cools down for ``cooldown_s`` (the previous
Engine's processes have exited and the page cache settles).

Progress goes to a callback (on the runner's thread); ``cancel()`` (any thread) ends the
scenario in progress at its next second and skips the rest. A cancelled scenario keeps what
it measured up to then, and the report is written all the same.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeapp.config import Config
from edgeapp.engine.api import MetricsPoint
from edgeapp.engine.bench.measure import Counters, Sample, ScenarioResult, fold, take_sample
from edgeapp.engine.bench.scenarios import Scenario, scenario_config
from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.errors import EdgeAppError

logger = logging.getLogger(__name__)

STAGES = ("starting", "warming up", "measuring", "stopping", "cooling down", "done")


@dataclass(frozen=True)
class Progress:
    """Where a benchmark run stands (sent to the progress callback)."""

    index: int                        # the scenario's place in the run, from 0
    count: int                        # scenarios in the run
    scenario: str
    stage: str                        # one of STAGES
    elapsed_s: float                  # measured seconds of this scenario so far
    duration_s: float                 # this scenario's measured seconds when it runs out
    fraction: float                   # of the whole run's measured seconds, 0..1
    sample: Sample | None = None      # the newest second (while measuring)
    result: ScenarioResult | None = None  # when the scenario is done


@dataclass
class BenchmarkReport:
    """A whole run: the machine, the scenarios' results, where the files went."""

    stem: str                         # benchmark_results_TIMESTAMP
    created: str                      # ISO 8601, local time
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[ScenarioResult] = field(default_factory=list)
    cancelled: bool = False
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        return {"stem": self.stem, "created": self.created, "machine": self.machine,
                "settings": self.settings, "cancelled": self.cancelled,
                "scenarios": [r.to_dict() for r in self.results], "files": self.files}


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was when the run began."""
    model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


class BenchmarkRunner:
    """Runs scenarios on ``config``; see the module docstring."""

    def __init__(self, config: Config, scenarios: list[Scenario], *,
                 out_dir: Path | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 warmup_s: float = 15.0, cooldown_s: float = 10.0,
                 start_timeout_s: float = 240.0) -> None:
        if not scenarios:
            raise EdgeAppError("a benchmark needs at least one scenario")
        self.config = config
        self.scenarios = list(scenarios)
        self.out_dir = out_dir
        self._progress = progress
        self.warmup_s, self.cooldown_s, self.start_timeout_s = warmup_s, cooldown_s, \
            start_timeout_s
        self._cancel = threading.Event()
        stamp = time.strftime("%Y%m%d_%H%M%S")
        self.report = BenchmarkReport(
            stem=f"benchmark_results_{stamp}", created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            machine=machine_info(),
            settings={"warmup_s": warmup_s, "cooldown_s": cooldown_s,
                      "vlm_backend": config.vlm.backend, "vlm_grade": config.vlm.grade,
                      "local_workers": config.distributed.local_workers,
                      "models": str(config.models.path)})
        self._total_s = sum(s.duration_s for s in self.scenarios)
        self._done_s = 0.0

    def cancel(self) -> None:
        """End the scenario in progress at its next second and skip the rest (any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._cancel.is_set()

    def run(self) -> BenchmarkReport:
        """Every scenario in turn; the report (written to ``out_dir`` when given)."""
        try:
            for index, scenario in enumerate(self.scenarios):
                if self.cancelled:
                    break
                if index:
                    self._tell(index, scenario, "cooling down", 0.0)
                    self._cancel.wait(self.cooldown_s)
                    if self.cancelled:
                        break
                result = self._run_one(index, scenario)
                self.report.results.append(result)
                self._done_s += scenario.duration_s
                self._tell(index, scenario, "done", result.duration_s, result=result)
        finally:
            self.report.cancelled = self.cancelled
            self.report.machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
            if self.out_dir is not None:
                from edgeapp.engine.bench.report import write_report

                write_report(self.report, self.out_dir)
        return self.report

    # ── one scenario ─────────────────────────────────────────────────────────────────────

    def _run_one(self, index: int, scenario: Scenario) -> ScenarioResult:
        from edgeapp.engine.engine import Engine

        result = ScenarioResult(scenario)
        root = Path(tempfile.mkdtemp(prefix="ea-bench-", dir="/tmp"))  # ipc paths: short
        try:
            config = scenario_config(self.config, scenario, root)
            self._tell(index, scenario, "starting", 0.0)
            began = time.monotonic()
            engine = Engine(config)
            engine.start()
            try:
                fixed = scenario.fixed
                if fixed.any:
                    engine.set_override(fps=fixed.fps_level, resolution=fixed.resolution_level,
                                        grade=fixed.grade)
                if self._warm_up(engine, index, scenario):
                    result.warmup_s = round(time.monotonic() - began, 1)
                    window = self._measure(engine, index, scenario, result)
                else:
                    window = None
            finally:
                self._tell(index, scenario, "stopping", result.duration_s)
                engine.stop(timeout=30.0, finish_orders=False)
            result.cancelled = self.cancelled
            if window is not None:
                start, end, points, end_status = window
                path = default_results_path(config.data_dir)
                fold(result, start, end, orders_between(path, start.wall, end.wall), points,
                     end_status)
                result.results_db = self._keep_store(path, scenario)
        except EdgeAppError as exc:  # a scenario that fails is reported; the run goes on
            logger.warning("benchmark scenario %s failed: %s", scenario.name, exc)
            result.error = str(exc)
        except Exception as exc:  # a bug: its traceback goes to the log, the run goes on
            logger.exception("benchmark scenario %s failed", scenario.name)
            result.error = repr(exc)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return result

    def _warm_up(self, engine: Any, index: int, scenario: Scenario) -> bool:
        """Until the controller is ready, every station's frames are through, and
        ``warmup_s`` more seconds; False when cancelled."""
        deadline = time.monotonic() + self.start_timeout_s
        flowing_since: float | None = None
        while not self._cancel.wait(0.25):
            now = time.monotonic()
            if flowing_since is None:
                status = engine.status()
                stations = status.stations
                if (status.control.ready and len(stations) == scenario.stations
                        and all(s.frames_processed > 0 for s in stations)):
                    flowing_since = now
                elif now > deadline:
                    raise EdgeAppError(
                        f"scenario {scenario.name}: the engine did not have its controller "
                        f"ready and frames from all {scenario.stations} stations within "
                        f"{self.start_timeout_s:.0f} s")
            elif now - flowing_since >= self.warmup_s:
                return True
            self._tell(index, scenario, "warming up", 0.0)
        return False

    def _measure(self, engine: Any, index: int, scenario: Scenario, result: ScenarioResult
                 ) -> tuple[Counters, Counters, list[MetricsPoint], Any]:
        """``duration_s`` seconds (fewer when cancelled), a sample each second; the metrics
        history is collected as it comes (a long scenario outlasts the history's ring)."""
        space = engine.space
        status = engine.status()
        start = last = Counters.read(status)
        points: list[MetricsPoint] = []
        t0 = time.monotonic()
        tick = 0
        while True:
            tick += 1
            wait = t0 + min(tick, scenario.duration_s) - time.monotonic()
            cancelled = self._cancel.wait(max(0.0, wait))
            status = engine.status()
            now = Counters.read(status)
            points += engine.metrics_history(points[-1].ts if points else start.wall)
            elapsed = time.monotonic() - t0
            if now.wall - last.wall >= 0.5:  # a cancel right after a sample: no half-second
                sample = take_sample(status, points[-1] if points else None, space, elapsed,
                                     start, last, now)
                result.samples.append(sample)
                last = now
                result.duration_s = round(elapsed, 2)
                self._tell(index, scenario, "measuring", elapsed, sample=sample)
            if cancelled or elapsed >= scenario.duration_s:
                return start, now, points, status

    def _keep_store(self, path: Path, scenario: Scenario) -> str | None:
        """Copy the scenario's results store beside the report (SQLite's backup: one
        consistent file whatever the WAL held); its file name, or None without a folder."""
        if self.out_dir is None:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{self.report.stem}_{scenario.name}.sqlite3"
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        target = sqlite3.connect(self.out_dir / name)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return name

    def _tell(self, index: int, scenario: Scenario, stage: str, elapsed: float, *,
              sample: Sample | None = None, result: ScenarioResult | None = None) -> None:
        if self._progress is None:
            return
        done = self._done_s + (0.0 if stage == "done" else min(elapsed, scenario.duration_s))
        self._progress(Progress(index, len(self.scenarios), scenario.name, stage,
                                round(elapsed, 2), scenario.duration_s,
                                min(1.0, done / self._total_s), sample, result))


def orders_between(path: Path, start: float, end: float) -> list[OrderResult]:
    """Every order whose verdict was stored after ``start`` and by ``end`` (wall clock)."""
    with ResultsStore(path, create=False) as store:
        return [r for r in store.recent(limit=None) if start < r.created_at <= end]
