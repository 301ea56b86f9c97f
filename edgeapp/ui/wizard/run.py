"""The wizard's run page: the run's progress bar, a live plot of each scenario's frames per
second, and Cancel. Next stays disabled until the run has ended (cancelled or not)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from edgeapp.engine.bench.runner import BenchmarkReport, Progress
from edgeapp.ui.panels.common import palette_colours

_PENS = ("#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41")
_STEPS = 1000  # the progress bar's resolution


class RunPage(QWizardPage):
    """Starts the run when shown; shows its progress until it ends."""

    def __init__(self) -> None:
        super().__init__()
        import pyqtgraph as pg

        self.setTitle("Running")
        self.setSubTitle("The window stays usable meanwhile; Cancel keeps what was measured.")
        self.bar = QProgressBar()
        self.bar.setRange(0, _STEPS)
        self.stage = QLabel("waiting to start")
        self.stage.setWordWrap(True)
        self.figures = QLabel("")
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.clicked.connect(self._cancel)
        self.cancel_button.setEnabled(False)
        self.plot = pg.PlotWidget()
        background, text = palette_colours()
        self.plot.setBackground(background)
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(text))
            item.getAxis(name).setTextPen(pg.mkPen(text))
            item.getAxis(name).enableAutoSIPrefix(False)
        item.setLabel("left", "frames/s", color=text.name())
        item.setLabel("bottom", "measured seconds", color=text.name())
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setMenuEnabled(False)
        self.legend = self.plot.addLegend(offset=(4, 4), labelTextSize="8pt")
        self.plot.setMinimumHeight(220)
        self.curves: dict[str, Any] = {}
        self._points: dict[str, tuple[list[float], list[float]]] = {}
        self.report: BenchmarkReport | None = None
        self.error: str | None = None
        self._job: Any = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.stage, 1)
        buttons.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addLayout(buttons)
        layout.addWidget(self.figures)
        layout.addWidget(self.plot, 1)

    # ── the run ──────────────────────────────────────────────────────────────────────────

    def initializePage(self) -> None:  # noqa: N802 (Qt's name)
        """Start once the live engine (if any) has stopped."""
        wizard: Any = self.wizard()
        self.stage.setText("waiting for the live engine to stop…")
        wizard.when_live_stopped(self._start)

    def _start(self) -> None:
        wizard: Any = self.wizard()
        self._job = wizard.start_job()
        self._job.progressed.connect(self.show_progress)
        self._job.finished.connect(self._finished)
        self._job.failed.connect(self._failed)
        self.cancel_button.setEnabled(True)
        self.stage.setText("starting…")
        self._job.start()

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.stage.setText("cancelling: the scenario ends at its next second, what was "
                               "measured is kept…")

    def show_progress(self, p: Progress) -> None:
        """One progress report: the bar, the stage, the newest second on the plot."""
        self.bar.setValue(round(p.fraction * _STEPS))
        if self.cancel_button.isEnabled():
            self.stage.setText(f"scenario {p.index + 1} of {p.count}, {p.scenario}: {p.stage}"
                               + (f" {p.elapsed_s:.0f} / {p.duration_s:.0f} s"
                                  if p.stage == "measuring" else ""))
        if p.sample is None:
            return
        s = p.sample
        xs, ys = self._points.setdefault(p.scenario, ([], []))
        xs.append(s.t_s)
        ys.append(float("nan") if s.frames_per_s is None else s.frames_per_s)
        curve = self.curves.get(p.scenario)
        if curve is None:
            import pyqtgraph as pg

            pen = pg.mkPen(_PENS[len(self.curves) % len(_PENS)], width=1.5)
            curve = self.curves[p.scenario] = self.plot.plot(pen=pen, name=p.scenario,
                                                             connect="finite")
        curve.setData(xs, ys)
        cpu = "n/a" if s.cpu_percent is None else f"{s.cpu_percent:.0f} %"
        gpu = "n/a" if s.gpu_percent is None else f"{s.gpu_percent:.0f} %"
        critical = ", ".join(s.critical) or "none"
        self.figures.setText(f"{s.orders} orders · CPU {cpu} · GPU {gpu} · "
                             f"CRITICAL SLOs: {critical}")

    def _finished(self, report: BenchmarkReport) -> None:
        self.report = report
        self.cancel_button.setEnabled(False)
        self.bar.setValue(_STEPS if not report.cancelled else self.bar.value())
        errors = [r for r in report.results if r.error]
        self.stage.setText(
            ("cancelled: the results cover what was measured" if report.cancelled
             else "done") + (f"; {len(errors)} scenario(s) failed" if errors else ""))
        self.completeChanged.emit()
        self.wizard().run_ended()  # type: ignore[attr-defined]

    def _failed(self, why: str) -> None:
        self.error = why
        self.cancel_button.setEnabled(False)
        self.stage.setText(f"the run failed: {why}")
        self.completeChanged.emit()
        self.wizard().run_ended()  # type: ignore[attr-defined]

    @property
    def running(self) -> bool:
        """True while the run's thread is alive."""
        return self._job is not None and self._job.running

    def isComplete(self) -> bool:  # noqa: N802 (Qt's name)
        """Next only once the run has a report."""
        return self.report is not None
