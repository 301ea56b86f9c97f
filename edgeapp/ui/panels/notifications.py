"""Notifications: the newest warning or error as a banner until dismissed, and every
notification in a log (never a silent failure)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edgeapp.engine.api import Severity
from edgeapp.ui.panels.common import MUTED_COLOUR, SEVERITY_COLOURS, clock, placeholder

COLUMNS = ("Time", "Severity", "From", "Message")
MAX_ROWS = 1000  # rows fit their wrapped text; the engine's log keeps everything


def severity_of(value: Any) -> Severity:
    """A ``Severity`` from the enum or its name (``"warning"``)."""
    if isinstance(value, Severity):
        return value
    return Severity[str(value).upper()]


class NotificationsPanel(QWidget):
    """A banner for the newest warning or error, and the log of every notification."""

    TITLE = "Notifications"

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss = QPushButton("Dismiss")
        row = QHBoxLayout(self.banner)
        row.addWidget(self.banner_text, 1)
        row.addWidget(self.dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        self.dismiss.clicked.connect(self.banner.hide)

        self.problems_only = QCheckBox("Warnings and errors only")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        # a message wraps onto as many lines as it needs, at any width of the dock
        self.table.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.empty = placeholder("No notifications yet: engine warnings and errors appear here "
                                 "and as a banner above.")
        lay = QVBoxLayout(self)
        lay.addWidget(self.banner)
        lay.addWidget(self.problems_only)
        lay.addWidget(self.empty)
        lay.addWidget(self.table, 1)
        self.table.hide()
        self.problems_only.toggled.connect(self._filter)
        bridge.notification.connect(self.add)

    def add(self, note: Any) -> None:
        """Log a ``Notification`` (newest at the bottom); a warning or error takes the banner."""
        severity = severity_of(note.severity)
        part = getattr(note, "part", "engine")
        colour = SEVERITY_COLOURS.get(severity.name, MUTED_COLOUR)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate((clock(note.ts), severity.name.lower(), part, note.text)):
            item = QTableWidgetItem(text)
            if col == 1:
                item.setForeground(colour)
            if col == 3:
                item.setToolTip(note.text)
            self.table.setItem(row, col, item)
        self.table.setRowHidden(row, self.problems_only.isChecked()
                                and severity < Severity.WARNING)
        if row + 1 > MAX_ROWS:
            self.table.removeRow(0)
        self.empty.hide()
        self.table.show()
        self.table.scrollToBottom()
        if severity >= Severity.WARNING:
            self._show_banner(severity, part, note)

    def _show_banner(self, severity: Severity, part: str, note: Any) -> None:
        colour = SEVERITY_COLOURS[severity.name]
        self.banner.setStyleSheet(
            f"QFrame {{ background: {colour.lighter(185).name()}; "
            f"border: 1px solid {colour.name()}; border-radius: 4px; }}"
            "QLabel { border: none; background: transparent; color: #202020; }")
        self.banner_text.setText(f"<b>{severity.name.title()}</b> from {part} at "
                                 f"{clock(note.ts)}: {_escape(note.text)}")
        self.banner.show()

    def messages(self) -> list[str]:
        """Every logged message, oldest first."""
        return [self.table.item(r, 3).text() for r in range(self.table.rowCount())]

    def _filter(self, problems_only: bool) -> None:
        for row in range(self.table.rowCount()):
            info = self.table.item(row, 1).text() == "info"
            self.table.setRowHidden(row, problems_only and info)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
