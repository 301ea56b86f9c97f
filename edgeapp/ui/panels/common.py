"""What the panels share: values with units (n/a when unknown), state colours, a status light,
a send throttle and plots styled from the window's palette."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea, QVBoxLayout, QWidget

NA = "n/a"

# One colour per state, used for lights, badges and text alike.
OK_COLOUR = QColor("#2e7d32")
WARNING_COLOUR = QColor("#ef8f00")
CRITICAL_COLOUR = QColor("#c62828")
MUTED_COLOUR = QColor("#757575")

SLO_COLOURS = {"OK": OK_COLOUR, "WARNING": WARNING_COLOUR, "CRITICAL": CRITICAL_COLOUR}
ORDER_COLOURS = {
    "validated": OK_COLOUR,
    "mismatch": CRITICAL_COLOUR,
    "unreadable": WARNING_COLOUR,
    "failed": QColor("#6a1b9a"),
}
SEVERITY_COLOURS = {"INFO": MUTED_COLOUR, "WARNING": WARNING_COLOUR, "ERROR": CRITICAL_COLOUR}


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """``value`` with its unit, or n/a when it was not measured."""
    if value is None:
        return NA
    return f"{value:.{digits}f} {unit}".rstrip()


def clock(ts: float | None) -> str:
    """Local wall-clock time ``HH:MM:SS``; the date too when it is not today."""
    if ts is None:
        return NA
    t = time.localtime(ts)
    if time.strftime("%Y%m%d", t) == time.strftime("%Y%m%d"):
        return time.strftime("%H:%M:%S", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def ago(seconds: float | None) -> str:
    """How long ago, in the largest unit that fits: ``0.4 s ago``, ``3 min ago``."""
    if seconds is None:
        return NA
    if seconds < 10:
        return f"{seconds:.1f} s ago"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def name_of(value: Any) -> str:
    """An enum member's name (``SloState.OK`` -> ``OK``), a plain string upper-cased."""
    return value.name if hasattr(value, "name") else str(value).upper()


def value_of(value: Any) -> str:
    """An enum member's value as text (``StationState.RUNNING`` -> ``running``)."""
    return str(getattr(value, "value", value))


def grade_text(grade: Any) -> str:
    """``LOW (YOLO11n)``: the grade and the model size behind it."""
    if grade is None:
        return NA
    letter = getattr(grade, "letter", None)
    return f"{name_of(grade)} (YOLO11{letter})" if letter else name_of(grade)


def set_colour(label: QLabel, colour: QColor | None, bold: bool = False) -> None:
    """Colour a label's text (``None``: the palette's own)."""
    weight = "font-weight: 600;" if bold else ""
    label.setStyleSheet(f"color: {colour.name()}; {weight}" if colour is not None else weight)


class Light(QWidget):
    """A round status light (OK / WARNING / CRITICAL colours), with its state as tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colour = MUTED_COLOUR
        self.setFixedSize(self.sizeHint())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(16, 16)

    def set_colour(self, colour: QColor, tooltip: str = "") -> None:
        """Show ``colour``; repaints only when it changed."""
        self.setToolTip(tooltip)
        if colour != self._colour:
            self._colour = colour
            self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(self._colour.darker(130))
        p.setBrush(self._colour)
        p.drawEllipse(self.rect().adjusted(1, 1, -1, -1))


class Throttle(QObject):
    """Calls ``send(value)`` at once, then at most once per ``interval_ms`` with the newest
    value (superqt's ``qthrottled``: leading and trailing), so a dragged slider sends a
    handful of commands, not one per pixel."""

    def __init__(self, interval_ms: int, send: Callable[[Any], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._send = send
        self._pending: tuple[Any] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._flush)

    @property
    def busy(self) -> bool:
        """True while a value waits or was sent within the interval."""
        return self._timer.isActive()

    def push(self, value: Any) -> None:
        """Send ``value`` now, or as the trailing send of this interval."""
        if self._timer.isActive():
            self._pending = (value,)
            return
        self._send(value)
        self._timer.start()

    def _flush(self) -> None:
        if self._pending is not None:
            (value,), self._pending = self._pending, None
            self._send(value)
            self._timer.start()


def palette_colours() -> tuple[QColor, QColor]:
    """The window's background and text colours (plots follow the operator's theme)."""
    palette = QApplication.palette()
    return palette.window().color(), palette.windowText().color()


def style_plot(plot: Any, title: str = "", unit: str = "") -> None:
    """A pyqtgraph PlotWidget in the window's colours: title, y unit, grid, time x axis."""
    import pyqtgraph as pg

    background, text = palette_colours()
    plot.setBackground(background)
    item = plot.getPlotItem()
    item.setAxisItems({"bottom": pg.DateAxisItem(orientation="bottom")})
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
    if title:
        item.setTitle(title, color=text.name(), size="9pt")
    if unit:
        item.setLabel("left", unit, color=text.name())
    item.showGrid(x=True, y=True, alpha=0.2)
    item.setMenuEnabled(False)
    item.hideButtons()
    item.layout.setContentsMargins(2, 2, 16, 2)  # room for the last time label


def placeholder(text: str, parent: QWidget | None = None) -> QLabel:
    """A centred, muted line that says why a part of a panel is empty."""
    label = QLabel(text, parent)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    set_colour(label, MUTED_COLOUR)
    return label


def fill_with_scroll(panel: QWidget, body: QWidget) -> None:
    """Lay ``body`` into ``panel`` inside a frameless scroll area (a short dock scrolls)."""
    scroll = QScrollArea()
    scroll.setWidget(body)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
