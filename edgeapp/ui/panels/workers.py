"""Workers: every inference worker, local or remote, as the Producer sees it; rows are kept by
worker id and updated in place, and a worker that left stays listed with why."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edgeapp.ui.panels.common import (
    CRITICAL_COLOUR,
    MUTED_COLOUR,
    OK_COLOUR,
    WARNING_COLOUR,
    ago,
    clock,
    fmt,
    grade_text,
    set_colour,
)

COLUMNS = ("Worker", "Host", "Grade", "Tasks/s", "Done", "Leased", "Last seen", "State")
_STATE_COLOURS = {"active": OK_COLOUR, "silent": WARNING_COLOUR}


class WorkersPanel(QWidget):
    """id, host, grade, tasks/s, last seen and state of each worker."""

    TITLE = "Workers"

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("waiting for the engine's first status…")
        set_colour(self.summary, MUTED_COLOUR)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self._rows: dict[str, int] = {}
        self._left: dict[str, str] = {}  # worker id -> why it left
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.table)
        bridge.statusUpdated.connect(self.show_status)
        bridge.workerChanged.connect(self.worker_changed)

    def show_status(self, status: Any) -> None:
        """Paint ``status.workers``; a worker no longer listed is marked gone."""
        seen = set()
        for w in status.workers:
            seen.add(w.worker_id)
            self._left.pop(w.worker_id, None)
            where = "local" if w.local else "remote"
            pid = f", pid {w.pid}" if w.pid is not None else ""
            self._paint(w.worker_id, (
                w.name if w.name == w.worker_id else f"{w.name} ({w.worker_id})",
                f"{w.host} ({where}{pid})", grade_text(w.grade), fmt(w.tasks_per_s, "", 1),
                str(w.tasks_done), str(w.leased), ago(w.last_seen_s), w.state))
        for worker_id in self._rows.keys() - seen:
            self._mark_gone(worker_id, self._left.get(worker_id, "gone"))
        active = sum(1 for w in status.workers if w.state == "active")
        self.summary.setText(
            f"{active} of {len(status.workers)} workers active" if status.workers else
            "no worker registered: frames wait in the task queue until one joins")
        set_colour(self.summary, MUTED_COLOUR if status.workers else CRITICAL_COLOUR)

    def worker_changed(self, event: Any) -> None:
        """``WorkerJoined`` / ``WorkerLeft``: a leaver shows why at once."""
        reason = getattr(event, "reason", None)
        if reason is None:  # joined: the next status fills the row
            self._left.pop(event.worker_id, None)
            return
        why = f"left ({reason}; {event.requeued} tasks requeued)"
        self._left[event.worker_id] = why
        if event.worker_id in self._rows:
            self._mark_gone(event.worker_id, why)

    def _paint(self, worker_id: str, cells: tuple[str, ...]) -> None:
        row = self._rows.get(worker_id)
        if row is None:
            row = self._rows[worker_id] = self.table.rowCount()
            self.table.insertRow(row)
            for col in range(len(COLUMNS)):
                item = QTableWidgetItem()
                if col in (3, 4, 5):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        for col, text in enumerate(cells):
            item = self.table.item(row, col)
            if item.text() != text:
                item.setText(text)
        for col in range(len(COLUMNS) - 1):
            self.table.item(row, col).setData(Qt.ItemDataRole.ForegroundRole, None)
        state = self.table.item(row, len(COLUMNS) - 1)
        state.setForeground(_STATE_COLOURS.get(cells[-1], CRITICAL_COLOUR))

    def _mark_gone(self, worker_id: str, why: str) -> None:
        """A worker that left: greyed, no rate (it does no work), when it was last heard of."""
        row = self._rows[worker_id]
        state = self.table.item(row, len(COLUMNS) - 1)
        if state.text() == why:
            return
        if state.foreground().color() != MUTED_COLOUR:  # first time: it was live till now
            self.table.item(row, 3).setText("—")
            self.table.item(row, 6).setText(f"at {clock(time.time())}")
        state.setText(why)
        for col in range(len(COLUMNS)):
            self.table.item(row, col).setForeground(MUTED_COLOUR)
