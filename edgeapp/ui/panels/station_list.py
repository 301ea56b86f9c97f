"""The stations the engine runs, with their state, and the operator's add / remove."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edgeapp.config import StationConfig, config_from_dict
from edgeapp.errors import ConfigError
from edgeapp.ui.panels.common import CRITICAL_COLOUR, MUTED_COLOUR, OK_COLOUR, set_colour, value_of

_STATE_COLOURS = {"running": OK_COLOUR, "crashed": CRITICAL_COLOUR, "restarting": CRITICAL_COLOUR,
                  "offline": CRITICAL_COLOUR}


class StationList(QWidget):
    """A table of stations (rows kept by name, updated in place), an add form and Remove."""

    addRequested = Signal(object)     # StationConfig
    removeRequested = Signal(str)     # station name

    def __init__(self, config: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._config = config
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Station", "State", "Source"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        line = self.table.fontMetrics().height() + 10
        self.table.setMinimumHeight(line * 4)
        self.table.setMaximumHeight(line * 7)
        self._rows: dict[str, int] = {}

        self.name = QLineEdit()
        self.name.setPlaceholderText("name")
        self.source = QLineEdit("synthetic")
        self.source.setPlaceholderText("synthetic, rtsp://…, file path or usb:0")
        self.add_button = QPushButton("Add station")
        self.remove_button = QPushButton("Remove selected")
        self.remove_button.setEnabled(False)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.hide()
        set_colour(self.error, CRITICAL_COLOUR)
        form = QHBoxLayout()
        form.addWidget(self.name, 1)
        form.addWidget(self.source, 2)
        form.addWidget(self.add_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        lay.addWidget(self.remove_button)
        lay.addLayout(form)
        lay.addWidget(self.error)

        self.add_button.clicked.connect(self._add)
        self.name.returnPressed.connect(self._add)
        self.source.returnPressed.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.table.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.table.selectedItems())))
        self._suggest_name()

    def show_stations(self, stations: Any) -> None:
        """Paint ``StationStatus`` rows: update in place, append new ones."""
        for s in stations:
            row = self._rows.get(s.name)
            if row is None:
                row = self.table.rowCount()
                self.table.insertRow(row)
                for col in range(3):
                    self.table.setItem(row, col, QTableWidgetItem())
                self.table.item(row, 0).setText(s.name)
                self._rows[s.name] = row
            state = value_of(s.state)
            camera = f", camera {value_of(s.camera)}" if s.camera is not None else ""
            item = self.table.item(row, 1)
            if item.text() != state + camera:
                item.setText(state + camera)
                item.setForeground(_STATE_COLOURS.get(state, MUTED_COLOUR))
                item.setToolTip(s.reason)
            self.table.item(row, 2).setText(s.source)
        self._suggest_name()

    def station_names(self) -> list[str]:
        """Every station listed, in table order."""
        return list(self._rows)

    def _suggest_name(self) -> None:
        if self.name.text():
            return
        taken = set(self._rows) | {s.name for s in self._config.stations}
        n = len(taken) + 1
        while f"station-{n}" in taken:
            n += 1
        self.name.setPlaceholderText(f"station-{n}")

    def _add(self) -> None:
        try:
            station = self.station_from_form()
        except ConfigError as exc:
            self.error.setText(str(exc).removeprefix("config error: "))
            self.error.show()
            return
        self.error.hide()
        self.name.clear()
        self.addRequested.emit(station)
        self._suggest_name()

    def station_from_form(self) -> StationConfig:
        """The station the form describes, checked by the config checker (ConfigError)."""
        name = self.name.text().strip() or self.name.placeholderText()
        entry: dict[str, Any] = {"name": name, "source": self.source.text().strip(),
                                 "seed": max(len(self._rows), len(self._config.stations))}
        sibling = next((s for s in self._config.stations if s.source == "synthetic"), None)
        if entry["source"] == "synthetic" and sibling is not None:
            # a new synthetic camera looks like the configured ones
            entry.update(fps=sibling.fps, width=sibling.width, height=sibling.height,
                         wrong_order_rate=sibling.wrong_order_rate)
        (station,) = config_from_dict({"stations": [entry]}).stations
        return station

    def _remove(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        name = self.table.item(rows[0].row(), 0).text()
        if self.confirm(f"Remove {name}?",
                        f"{name} finishes the order on its counter, then stops."):
            self.removeRequested.emit(name)

    def confirm(self, title: str, text: str) -> bool:
        """Ask the operator (tests replace this)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes
