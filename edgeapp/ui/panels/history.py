"""History: every parameter change and scaling decision as a table (who, why), and a timeline of
stations, FPS, resolution and grade."""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edgeapp.ui.panels.common import clock, grade_text, value_of
from edgeapp.ui.panels.timeline import Timeline

COLUMNS = ("Time", "What", "From → to", "By", "Reason")
MAX_ROWS = 5000


class HistoryPanel(QWidget):
    """What changed when, by whom and why: parameters and the number of stations."""

    TITLE = "History"
    pastLoaded = Signal(object)  # list[ScalingDecision]

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.space = bridge.engine.space
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self._row_ts: list[float] = []  # ascending; row r shows _row_ts[-1 - r]
        self._decisions: set[tuple[float, int, int]] = set()  # live and kept ones meet
        self.timeline = Timeline()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        bridge.parametersChanged.connect(self.add_parameters)
        bridge.scalingDecision.connect(self.add_scaling)
        bridge.statusUpdated.connect(self.show_status)
        self.pastLoaded.connect(self._past_loaded)
        self._past_asked = False
        # The stations line counts running stations from the status (a decision's target is
        # reached only once the new station runs); decisions draw it only before that.
        self._first_status: float | None = None

    # ── events ───────────────────────────────────────────────────────────────────────────

    def add_parameters(self, event: Any) -> None:
        """A ``ParametersChanged``: one row per parameter that moved, and the timeline."""
        ts = getattr(event, "ts", None) or time.time()
        old, new, by = event.old, event.new, value_of(event.source)
        s = self.space
        if old.fps_level != new.fps_level:
            self._add_row(ts, "FPS", f"{_pct(s.fps_levels[old.fps_level])} → "
                          f"{_pct(s.fps_levels[new.fps_level])}", by, event.reason)
        if old.resolution_level != new.resolution_level:
            self._add_row(ts, "Resolution",
                          f"{_pct(s.resolution_levels[old.resolution_level])} → "
                          f"{_pct(s.resolution_levels[new.resolution_level])}", by, event.reason)
        if old.grade != new.grade:
            self._add_row(ts, "Model grade", f"{grade_text(old.grade)} → {grade_text(new.grade)}",
                          by, event.reason)
        self.timeline.add_parameters(ts, s.fps_levels[new.fps_level],
                                     s.resolution_levels[new.resolution_level], int(new.grade))

    def add_scaling(self, event: Any) -> None:
        """A ``ScalingDecision``: one row, and the station count on the timeline."""
        key = (event.ts, event.old_count, event.new_count)
        if key in self._decisions:
            return
        self._decisions.add(key)
        action = value_of(event.action).replace("_", " ")
        where = f" ({event.station})" if getattr(event, "station", None) else ""
        self._add_row(event.ts, f"Stations: {action}",
                      f"{event.old_count} → {event.new_count}{where}", value_of(event.by),
                      event.reason)
        if self._first_status is None or event.ts < self._first_status:
            # a decision from before this window: the line has no running count for then
            self.timeline.add_stations(event.ts, event.new_count)

    def show_status(self, status: Any) -> None:
        """Start the timeline from the first status; extend every line to now."""
        if status.running and not self._past_asked:  # the kept history is open once it runs
            self._past_asked = True
            self._load_past()
        p = status.parameters
        now = time.time()
        if self._first_status is None:
            self._first_status = now
        if not self.timeline.started:
            self.timeline.add_parameters(now, p.fps, p.resolution, int(p.grade))
        running = sum(1 for s in status.stations if value_of(s.state) == "running")
        self.timeline.add_stations(now, running, only_if_changed=True)
        self.timeline.extend_to(now)

    # ── table ────────────────────────────────────────────────────────────────────────────

    def _add_row(self, ts: float, what: str, change: str, by: str, reason: str) -> None:
        position = bisect.bisect_right(self._row_ts, ts)
        self._row_ts.insert(position, ts)
        row = len(self._row_ts) - 1 - position
        self.table.insertRow(row)
        for col, text in enumerate((clock(ts), what, change, by, reason)):
            item = QTableWidgetItem(text)
            if col == 4:
                item.setToolTip(reason)
            self.table.setItem(row, col, item)
        if len(self._row_ts) > MAX_ROWS:
            self._row_ts.pop(0)
            self.table.removeRow(self.table.rowCount() - 1)

    # ── after a restart ──────────────────────────────────────────────────────────────────

    def _load_past(self) -> None:
        """The kept scaling decisions, read off the GUI thread (they may come from SQLite)."""
        engine = self.bridge.engine
        signal = self.pastLoaded

        def load() -> None:
            try:
                past = list(engine.scaling_history())
            except Exception as exc:  # shown, not swallowed: the table says it is incomplete
                past = exc
            try:
                signal.emit(past)
            except RuntimeError:  # the panel was closed meanwhile
                pass

        threading.Thread(target=load, name="ui-history-past", daemon=True).start()

    def _past_loaded(self, past: Any) -> None:
        if isinstance(past, Exception):
            self._add_row(time.time(), "History", "not loaded", "window",
                          f"the kept scaling decisions could not be read: {past}")
            return
        for decision in sorted(past, key=lambda d: d.ts):
            self.add_scaling(decision)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"
