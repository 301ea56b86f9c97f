"""Metrics: throughput, order latency p95, CPU and memory, GPU (n/a when not measured) and
queue depths over the engine's metrics history, each curve created once and moved with
``setData``."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from edgeapp.ui.panels.common import NA, fmt, style_plot

HISTORY_POINTS = 900  # 15 minutes at the history's 1 s
_PENS = ("#1e88e5", "#e53935", "#43a047")


def _sum(values: dict[str, float | None]) -> float | None:
    known = [v for v in values.values() if v is not None]
    return sum(known) if known else None


@dataclass(frozen=True)
class Curve:
    """One line: its legend name, unit and how to read it from a ``MetricsPoint``."""

    name: str
    unit: str
    read: Callable[[Any], float | None]
    digits: int = 1


# (plot title, y unit, curves); the GPU alone can be unmeasurable on a machine, the others
# are only not measured yet (no order ended)
PLOTS: tuple[tuple[str, str, tuple[Curve, ...]], ...] = (
    ("Throughput", "frames/s", (
        Curve("processed", "fps", lambda p: _sum(p.fps_processed)),
        Curve("in", "fps", lambda p: _sum(p.fps_in)))),
    ("Orders", "orders/min", (
        Curve("judged", "/min", lambda p: p.orders_per_min),)),
    ("Order latency p95", "s", (
        Curve("p95", "s", lambda p: p.order_latency_p95_s, 2),)),
    ("CPU and memory", "%", (
        Curve("CPU", "%", lambda p: p.cpu_percent, 0),
        Curve("memory", "%", lambda p: p.memory_percent, 0))),
    ("GPU", "%", (
        Curve("GPU", "%", lambda p: p.gpu_percent, 0),
        Curve("GPU memory", "%", lambda p: p.gpu_memory_percent, 0))),
    ("Queues", "items", (
        Curve("tasks", "", lambda p: p.task_queue, 0),
        Curve("VLM queued", "", lambda p: p.vlm_queue, 0),
        Curve("VLM in flight", "", lambda p: p.vlm_in_flight, 0))),
)


class _Plot:
    """One plot: its curves, their rings of values, and a title with the newest values."""

    def __init__(self, title: str, unit: str, curves: tuple[Curve, ...]) -> None:
        import pyqtgraph as pg

        self.title, self.curves = title, curves
        self.widget = pg.PlotWidget()
        style_plot(self.widget, title, unit)
        self.widget.setMinimumSize(260, 160)
        self.widget.getPlotItem().setMouseEnabled(y=False)
        legend = self.widget.addLegend(offset=(4, 4), labelTextSize="8pt")
        legend.setLabelTextColor(self.widget.getAxis("left").textPen().color())
        self.lines = [self.widget.plot(pen=pg.mkPen(_PENS[i % len(_PENS)], width=1.5),
                                       name=c.name, connect="finite")
                      for i, c in enumerate(curves)]
        self.values = [collections.deque(maxlen=HISTORY_POINTS) for _ in curves]
        self.can_be_na = title == "GPU"
        self.na = pg.TextItem("n/a: not measured on this machine", anchor=(0.5, 0.5),
                              color=self.widget.getAxis("left").textPen().color())
        self.widget.addItem(self.na, ignoreBounds=True)
        self.na.hide()

    def add(self, point: Any) -> None:
        for curve, ring in zip(self.curves, self.values, strict=True):
            value = curve.read(point)
            ring.append(np.nan if value is None else float(value))

    def draw(self, ts: np.ndarray) -> None:
        newest = []
        for curve, line, ring in zip(self.curves, self.lines, self.values, strict=True):
            y = np.fromiter(ring, float, len(ring))
            line.setData(ts, y)
            last = None if not len(y) or np.isnan(y[-1]) else float(y[-1])
            newest.append(f"{curve.name} {fmt(last, curve.unit, curve.digits)}")
        measured = any(not np.all(np.isnan(np.fromiter(r, float, len(r)))) for r in self.values)
        unmeasured = self.can_be_na and not measured and len(ts) > 0
        self.na.setVisible(unmeasured)
        if unmeasured:
            self.na.setPos(float(ts[0] + (ts[-1] - ts[0]) / 2), 50.0)
            self.widget.setYRange(0, 100)
        text = f"{self.title}: " + (" · ".join(newest) if measured else NA)
        self.widget.getPlotItem().setTitle(text, size="9pt")


class MetricsPanel(QWidget):
    """Plots of the engine's metrics history, extended in place as new samples arrive."""

    TITLE = "Metrics"

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        lay = QVBoxLayout(self)
        grid = QGridLayout()
        self.plots = [_Plot(*spec) for spec in PLOTS]
        for i, plot in enumerate(self.plots):
            grid.addWidget(plot.widget, i // 2, i % 2)
        lay.addLayout(grid)
        self.ts: collections.deque[float] = collections.deque(maxlen=HISTORY_POINTS)
        bridge.statusUpdated.connect(self.refresh)

    def refresh(self, _status: Any = None) -> None:
        """Take the samples newer than the last one shown (a copy of a bounded deque) and
        extend the curves."""
        since = self.ts[-1] if self.ts else None
        points = [p for p in self.bridge.engine.metrics_history(since)
                  if since is None or p.ts > since]
        if not points:
            return
        for point in points:
            self.ts.append(point.ts)
            for plot in self.plots:
                plot.add(point)
        ts = np.fromiter(self.ts, float, len(self.ts))
        for plot in self.plots:
            plot.draw(ts)
