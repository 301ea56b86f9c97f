"""The wizard's last pages: the results as a table and two bar plots, then the export (JSON,
CSV, PNG plots and each scenario's results store into a folder of the operator's choice)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from edgeapp.engine.bench.measure import ScenarioResult
from edgeapp.engine.bench.report import write_report
from edgeapp.engine.bench.runner import BenchmarkReport
from edgeapp.ui.panels.common import NA, palette_colours

_BRUSHES = ("#1e88e5", "#43a047", "#fb8c00", "#e53935")


def _f(value: float | None, pattern: str) -> str:
    return NA if value is None else pattern.format(value)


# (header, how to show it)
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("scenario", lambda r: r.scenario.name),
    ("stations", lambda r: str(r.scenario.stations)),
    ("measured", lambda r: f"{r.duration_s:.0f} s" + (" (cancelled)" if r.cancelled else "")),
    ("orders", lambda r: str(r.orders)),
    ("orders/s", lambda r: _f(r.orders_per_s, "{:.3f}")),
    ("frames/s", lambda r: _f(r.frames_per_s, "{:.1f}")),
    ("latency avg", lambda r: _f(r.latency_avg_s, "{:.2f} s")),
    ("p50", lambda r: _f(r.latency_p50_s, "{:.2f} s")),
    ("p95", lambda r: _f(r.latency_p95_s, "{:.2f} s")),
    ("p99", lambda r: _f(r.latency_p99_s, "{:.2f} s")),
    ("checked", lambda r: _f(r.success_rate, "{:.1%}")),
    ("verdicts right", lambda r: _f(r.verdict_accuracy, "{:.1%}")),
    ("frames dropped", lambda r: str(r.frames_dropped)),
    ("SLOs met", lambda r: _f(r.slo_fulfilment, "{:.1%}")),
    ("CPU avg / max", lambda r: f"{_f(r.cpu_avg, '{:.0f}')} / {_f(r.cpu_max, '{:.0f}')} %"),
    ("GPU avg / max", lambda r: (NA if r.gpu_avg is None
                                 else f"{r.gpu_avg:.0f} / {r.gpu_max:.0f} %")),
    ("memory max", lambda r: _f(r.memory_max, "{:.0f} %")),
    ("parameters at the end", lambda r: _parameters(r)),
    ("error", lambda r: r.error or ""),
)


def _parameters(result: ScenarioResult) -> str:
    p = result.parameters_end
    if not p:
        return NA
    return f"FPS {p['fps']:g}, resolution {p['resolution']:g}, {p['grade']} ({p['set_by']})"


def _bar_plot(title: str, unit: str) -> Any:
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    background, text = palette_colours()
    plot.setBackground(background)
    item = plot.getPlotItem()
    for name in ("left", "bottom"):
        item.getAxis(name).setPen(pg.mkPen(text))
        item.getAxis(name).setTextPen(pg.mkPen(text))
        item.getAxis(name).enableAutoSIPrefix(False)
    item.setTitle(title, color=text.name(), size="9pt")
    item.setLabel("left", unit, color=text.name())
    item.showGrid(y=True, alpha=0.2)
    item.setMenuEnabled(False)
    item.setMouseEnabled(x=False, y=False)
    plot.addLegend(offset=(4, 4), labelTextSize="8pt")
    plot.setMinimumHeight(200)
    return plot


class ResultsPage(QWizardPage):
    """The table of every scenario's figures and the latency and throughput plots."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Results")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.latency = _bar_plot("Order latency (order end → verdict), every order", "s")
        self.throughput = _bar_plot("Throughput", "orders/s")
        plots = QHBoxLayout()
        plots.addWidget(self.latency)
        plots.addWidget(self.throughput)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(plots, 1)

    def initializePage(self) -> None:  # noqa: N802 (Qt's name)
        """Fill the table and the plots from the run's report."""
        report: BenchmarkReport = self.wizard().report  # type: ignore[attr-defined]
        self.show_report(report)

    def show_report(self, report: BenchmarkReport) -> None:
        """The table and both plots for ``report``."""
        results = report.results
        self.table.setRowCount(len(results))
        for row, result in enumerate(results):
            for col, (_, show) in enumerate(COLUMNS):
                self.table.setItem(row, col, QTableWidgetItem(show(result)))
        self.table.resizeColumnsToContents()
        machine = report.machine
        notes = ["Cancelled: the figures cover what was measured."] if report.cancelled else []
        notes.append(f"Measured on {machine.get('cpus')} CPUs "
                     f"({machine.get('cpu_model') or NA}); load average "
                     f"{machine.get('loadavg_start')} at the start.")
        if all(r.gpu_avg is None for r in results):
            notes.append("GPU n/a: not measured on this machine.")
        self.note.setText(" ".join(notes))
        self._bars(self.latency, results, (("avg", "latency_avg_s"), ("p50", "latency_p50_s"),
                                           ("p95", "latency_p95_s"), ("p99", "latency_p99_s")))
        self._bars(self.throughput, results, (("orders/s", "orders_per_s"),))

    @staticmethod
    def _bars(plot: Any, results: list[ScenarioResult], series: tuple[tuple[str, str], ...]
              ) -> None:
        import pyqtgraph as pg

        plot.getPlotItem().clear()
        width = 0.8 / len(series)
        for k, (name, field) in enumerate(series):
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(results))]
            heights = [getattr(r, field) or 0.0 for r in results]
            plot.addItem(pg.BarGraphItem(x=xs, height=heights, width=width * 0.9,
                                         brush=_BRUSHES[k % len(_BRUSHES)], name=name))
        ticks = [(i, r.scenario.name) for i, r in enumerate(results)]
        plot.getPlotItem().getAxis("bottom").setTicks([ticks])


class ExportPage(QWizardPage):
    """Write the report into a folder: JSON, CSV, the PNG plots and the results stores."""

    def __init__(self, default_dir: Path) -> None:
        super().__init__()
        self.setTitle("Export")
        self.setSubTitle("benchmark_results_TIMESTAMP.json (everything, per second too), .csv "
                         "(one row per scenario), PNG plots, and each scenario's results.")
        self.folder = QLineEdit(str(default_dir))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        self.written = QLabel("")
        self.written.setWordWrap(True)
        self.files: list[Path] = []
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.written)
        layout.addStretch(1)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the results to",
                                                  self.folder.text())
        if folder:
            self.folder.setText(folder)

    def export(self) -> list[Path]:
        """Write every file into the folder named; their paths (also listed on the page)."""
        wizard: Any = self.wizard()
        report: BenchmarkReport = wizard.report
        target = Path(self.folder.text()).expanduser()
        try:
            written = [Path(p) for p in write_report(report, target).values()]
            for result in report.results:
                if result.results_db:
                    source = wizard.staging / result.results_db
                    if source.exists() and source.parent.resolve() != target.resolve():
                        shutil.copy2(source, target / result.results_db)
                    written.append(target / result.results_db)
        except OSError as exc:
            self.written.setText(f"could not write to {target}: {exc.strerror or exc}; "
                                 "choose another folder")
            return []
        self.files = written
        self.written.setText("Written:\n" + "\n".join(str(p) for p in written))
        return written
