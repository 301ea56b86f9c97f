"""A step timeline of stations, FPS, resolution and grade: four plots on one time axis, each
curve created once and moved with ``setData``."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

from edgeapp.engine.vision.grades import Grade
from edgeapp.ui.panels.common import OK_COLOUR, palette_colours

# Points kept per line; each is a change, so this is days of an operator's shift.
MAX_POINTS = 5000


class _Series:
    """One stepped line: the change points, drawn up to ``now``."""

    def __init__(self, curve: Any) -> None:
        self.curve = curve
        self.ts: list[float] = []
        self.values: list[float] = []

    def add(self, ts: float, value: float, only_if_changed: bool = False) -> None:
        if only_if_changed and self.values and self.values[-1] == value:
            return
        self.ts.append(ts)
        self.values.append(value)
        del self.ts[:-MAX_POINTS], self.values[:-MAX_POINTS]

    def draw(self, now: float) -> None:
        """Each value held from its change to the next one, the last one up to ``now``."""
        if not self.ts:
            return
        order = np.argsort(self.ts, kind="stable")  # a kept decision may arrive late
        ts, values = np.asarray(self.ts)[order], np.asarray(self.values)[order]
        ends = np.append(ts[1:], max(now, ts[-1]))
        self.curve.setData(np.column_stack((ts, ends)).ravel(),
                           np.repeat(values, 2))


class Timeline(QWidget):
    """Stations / FPS % / resolution % / grade against wall-clock time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        background, text = palette_colours()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(background)
        self.view.setMinimumHeight(220)
        pen = pg.mkPen(OK_COLOUR, width=2)
        self.series: dict[str, _Series] = {}
        self.plots: dict[str, Any] = {}
        first = None
        specs = (("stations", "stations", (-0.3, 2)), ("fps", "FPS %", (0, 110)),
                 ("resolution", "resolution %", (0, 110)), ("grade", "grade", (-0.3, 2.3)))
        for i, (key, label, y_range) in enumerate(specs):
            last = i == len(specs) - 1
            axes = {"bottom": pg.DateAxisItem(orientation="bottom")} if last else {}
            plot = self.view.addPlot(row=i, col=0, axisItems=axes)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(y=False)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("left", label, color=text.name())
            for name in ("left", "bottom"):
                plot.getAxis(name).setPen(pg.mkPen(text))
                plot.getAxis(name).setTextPen(pg.mkPen(text))
            plot.getAxis("left").setWidth(84)  # "medium" beside the axis label
            if not last:
                plot.getAxis("bottom").setStyle(showValues=False)
            if y_range is not None:
                plot.setYRange(*y_range, padding=0)
            if key == "stations":
                plot.getAxis("left").setTickSpacing(1, 1)  # whole stations only
            if key == "grade":
                plot.getAxis("left").setTicks([[(int(g), g.name.lower()) for g in Grade]])
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            self.series[key] = _Series(plot.plot(pen=pen))
            self.plots[key] = plot
        self._stations_top = 2.0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)

    @property
    def started(self) -> bool:
        """True once the parameters have a first point."""
        return bool(self.series["fps"].ts)

    def add_parameters(self, ts: float, fps: float, resolution: float, grade: int) -> None:
        """The parameters in force from ``ts`` (fractions, grade as 0-2)."""
        self.series["fps"].add(ts, fps * 100.0)
        self.series["resolution"].add(ts, resolution * 100.0)
        self.series["grade"].add(ts, float(grade))

    def add_stations(self, ts: float, count: int, only_if_changed: bool = False) -> None:
        """The number of stations from ``ts``."""
        series = self.series["stations"]
        series.add(ts, float(count), only_if_changed)
        top = max(series.values) + 1
        if top != self._stations_top:
            self._stations_top = top
            self.plots["stations"].setYRange(-0.3, top, padding=0)

    def extend_to(self, now: float) -> None:
        """Redraw every line up to ``now``."""
        for series in self.series.values():
            series.draw(now)
