"""The benchmark wizard: choose scenarios → run (progress, live plot, Cancel) → results →
export. It runs the engine-side :class:`~edgeapp.engine.bench.runner.BenchmarkRunner` (its
own Engines, on private sockets and scratch data folders) on a thread of its own, so the
window stays responsive. When the window's live engine is running, the wizard asks to stop
it first: its work would distort every figure.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from edgeapp import paths
from edgeapp.config import Config
from edgeapp.engine.bench.runner import BenchmarkReport
from edgeapp.ui.engine_host import EnginePhase
from edgeapp.ui.wizard.choose import ScenarioPage
from edgeapp.ui.wizard.job import BenchmarkJob
from edgeapp.ui.wizard.results import ExportPage, ResultsPage
from edgeapp.ui.wizard.run import RunPage


def default_results_dir() -> Path:
    """Where the export goes unless the operator chooses: the data folder's
    ``benchmark_results``."""
    return Path(paths.user_data_dir()) / "benchmark_results"


class BenchmarkWizard(QWizard):
    """Four pages on one run; see the module docstring."""

    def __init__(self, config: Config, *, host: Any = None,
                 stop_live: Callable[[], None] | None = None,
                 results_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Benchmark")
        self.setObjectName("BenchmarkWizard")
        self.config = config
        self.host = host                 # the window's EngineHost, if there is a live engine
        self._stop_live = stop_live
        self.staging = Path(tempfile.mkdtemp(prefix="edgeapp-bench-"))
        self.report: BenchmarkReport | None = None
        self.job: BenchmarkJob | None = None
        self._close_when_done = False
        self._waiting: Callable[[], None] | None = None
        self.choose = ScenarioPage(config)
        self.choose.setCommitPage(True)
        self.choose.setButtonText(QWizard.WizardButton.CommitButton, "Run")
        self.run_page = RunPage()
        self.run_page.setCommitPage(True)
        self.run_page.setButtonText(QWizard.WizardButton.CommitButton, "Results")
        self.results = ResultsPage()
        self.export = ExportPage(results_dir or default_results_dir())
        for page in (self.choose, self.run_page, self.results, self.export):
            self.addPage(page)
        self.resize(1100, 760)

    # ── the live engine ──────────────────────────────────────────────────────────────────

    def live_running(self) -> bool:
        """True while the window's live engine is built, starting or running."""
        host = self.host
        return host is not None and not host.done and host.phase not in (
            EnginePhase.STOPPED, EnginePhase.FAILED)

    def confirm_live_stop(self) -> bool:
        """Ask to stop the live engine (when it runs); True when the run may go on."""
        if not self.live_running():
            return True
        answer = QMessageBox.question(
            self, "Stop the live engine?",
            "The window's engine is running. The benchmark runs its own Engine, and the live "
            "one's work would distort its figures.\n\nStop the live engine and run the "
            "benchmark?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        if self._stop_live is not None:
            self._stop_live()
        return True

    def when_live_stopped(self, then: Callable[[], None]) -> None:
        """Call ``then`` once no live engine runs (at once when none does)."""
        if self.host is None or self.host.done:
            then()
            return
        self._waiting = then
        self.host.finished.connect(self._live_stopped)
        if self.host.done:  # it ended between the check and the connection
            self._live_stopped()

    def _live_stopped(self) -> None:
        then, self._waiting = self._waiting, None
        if then is not None:
            self.host.finished.disconnect(self._live_stopped)
            then()

    # ── the run ──────────────────────────────────────────────────────────────────────────

    def start_job(self) -> BenchmarkJob:
        """The run of the scenarios chosen (the run page starts it)."""
        self.job = BenchmarkJob(self.config, self.choose.scenarios(), self.staging,
                                warmup_s=float(self.choose.warmup.value()),
                                cooldown_s=float(self.choose.cooldown.value()), parent=self)
        return self.job

    def run_ended(self) -> None:
        """The run page has the report (or the run failed)."""
        self.report = self.run_page.report
        if self._close_when_done:
            self._close_when_done = False
            self.reject()

    # ── closing ──────────────────────────────────────────────────────────────────────────

    def reject(self) -> None:
        """Cancel or close: a run in progress is cancelled first, and the wizard closes once
        it has ended (its Engine stopped)."""
        if self.job is not None and self.job.running:
            self._close_when_done = True
            self.job.cancel()
            self.run_page.stage.setText("closing once the run has stopped…")
            return
        self._clean_up()
        super().reject()

    def accept(self) -> None:
        """Finish."""
        self._clean_up()
        super().accept()

    def _clean_up(self) -> None:
        if self.job is not None:
            self.job.join(5.0)
        shutil.rmtree(self.staging, ignore_errors=True)
