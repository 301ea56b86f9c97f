"""SLOs: one light per objective (OK / WARNING / CRITICAL), its value against its limit, and a
short sparkline of the last minutes."""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from edgeapp.engine.control.slo import Slo
from edgeapp.ui.panels.common import (
    CRITICAL_COLOUR,
    MUTED_COLOUR,
    NA,
    OK_COLOUR,
    SLO_COLOURS,
    Light,
    fmt,
    name_of,
    palette_colours,
    set_colour,
)

# name shown, unit, digits: in the operator's words (DESIGN §7).
SLO_LABELS: dict[Slo, tuple[str, str, int]] = {
    Slo.QUEUE: ("Task queue", "tasks", 0),
    Slo.MEMORY: ("Memory", "%", 0),
    Slo.FRAME_LATENCY: ("Frame latency p95", "ms", 0),
    Slo.ORDER_LATENCY: ("Order latency", "s", 2),
}
SPARK_POINTS = 240  # two minutes of status at 500 ms


class _SloRow:
    """The widgets of one SLO and its recent values (a ring of ``SPARK_POINTS``)."""

    def __init__(self, slo: Slo, grid: QGridLayout, row: int) -> None:
        import pyqtgraph as pg

        self.slo = slo
        self.title, self.unit, self.digits = SLO_LABELS.get(slo, (slo.value, "", 1))
        self.light = Light()
        self.name = QLabel(self.title)
        self.value = QLabel(NA)
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.state = QLabel("OK")
        self.state.setMinimumWidth(self.state.fontMetrics().horizontalAdvance("CRITICAL") + 6)
        background, text = palette_colours()
        self.spark = pg.PlotWidget(background=background)
        self.spark.setFixedHeight(34)
        self.spark.setMinimumWidth(80)
        item = self.spark.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        self.spark.setToolTip(f"{self.title}, the last {SPARK_POINTS // 120} minutes; "
                              "the dashed line is the limit")
        self.curve = item.plot(pen=pg.mkPen(text, width=1.5), connect="finite")
        self.limit_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(CRITICAL_COLOUR, width=1,
                                                                style=Qt.PenStyle.DashLine))
        self.limit_line.hide()
        item.addItem(self.limit_line)
        self.ts: collections.deque[float] = collections.deque(maxlen=SPARK_POINTS)
        self.values: collections.deque[float] = collections.deque(maxlen=SPARK_POINTS)
        for col, widget in enumerate((self.light, self.name, self.value, self.state, self.spark)):
            grid.addWidget(widget, row, col)

    def show(self, value: float | None, limit: float | None, state: Any) -> None:
        """Paint the light, the value against the limit and the state."""
        key = name_of(state)
        colour = SLO_COLOURS.get(key, MUTED_COLOUR)
        if value is None:
            colour, key = MUTED_COLOUR, "NOT MEASURED" if limit is None else "NO DATA"
        self.light.set_colour(colour, f"{self.title}: {key}")
        self.value.setText(f"{fmt(value, self.unit, self.digits)} / "
                           f"{fmt(limit, self.unit, self.digits)}")
        self.state.setText(key.lower() if key in ("NOT MEASURED", "NO DATA") else key)
        set_colour(self.state, colour, bold=True)
        if limit is not None:
            self.limit_line.setValue(limit)
            self.limit_line.show()

    def add_point(self, ts: float, value: float | None) -> None:
        """One more sparkline point (NaN leaves a gap where nothing was measured)."""
        self.ts.append(ts)
        self.values.append(np.nan if value is None else float(value))
        self.curve.setData(np.fromiter(self.ts, float), np.fromiter(self.values, float))


class SloPanel(QWidget):
    """Each SLO as a light with its value against its limit and a sparkline."""

    TITLE = "SLOs"

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.summary = QLabel("waiting for the engine's first status…")
        self.summary.setWordWrap(True)
        grid = QGridLayout()
        grid.setColumnStretch(4, 1)
        grid.setHorizontalSpacing(10)
        self.rows = {slo: _SloRow(slo, grid, i) for i, slo in enumerate(Slo)}
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addLayout(grid)
        lay.addStretch(1)
        bridge.statusUpdated.connect(self.show_status)
        bridge.sloChanged.connect(self.show_change)

    def show_status(self, status: Any) -> None:
        """Paint every SLO from an ``EngineStatus``."""
        now = time.time()
        for s in status.slos:
            row = self.rows.get(Slo(s.name))
            if row is not None:
                row.show(s.value, s.limit, s.state)
                row.add_point(now, s.value)
        self._summarise(status.slos)

    def show_change(self, event: Any) -> None:
        """An ``SloChanged`` event: the light changes at once, not at the next status."""
        row = self.rows.get(Slo(event.name))
        if row is not None:
            row.show(event.value, event.limit, event.new)

    def _summarise(self, slos: Any) -> None:
        bad = [(name_of(s.state), SLO_LABELS.get(Slo(s.name), (str(s.name),))[0].lower())
               for s in slos if name_of(s.state) != "OK"]
        if not bad:
            self.summary.setText("All SLOs met")
            set_colour(self.summary, OK_COLOUR, bold=True)
            return
        worst = "CRITICAL" if any(state == "CRITICAL" for state, _ in bad) else "WARNING"
        self.summary.setText(", ".join(f"{name} {state.lower()}" for state, name in bad))
        set_colour(self.summary, SLO_COLOURS[worst], bold=True)
