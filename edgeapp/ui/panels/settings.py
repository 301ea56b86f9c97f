"""Settings: open a config file (checked by the config checker, errors shown by key), choose the
VLM backend and URL, edit the station sources; Apply confirms, then asks the window to restart
the engine on the new config (``restartRequested``)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
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

from edgeapp.config import Config, config_from_dict, config_to_yaml, parse_yaml
from edgeapp.config.seed import apply_seed_keys
from edgeapp.errors import ConfigError
from edgeapp.ui.panels.common import (
    CRITICAL_COLOUR,
    MUTED_COLOUR,
    OK_COLOUR,
    fill_with_scroll,
    set_colour,
)

_KEY = re.compile(r"^config error: (?P<key>[\w.\[\]]+)(?: = | is missing)")
_STATION_KEY = re.compile(r"^stations\[(\d+)\]")
_BAD = f"background: {CRITICAL_COLOUR.lighter(180).name()};"


def error_key(message: str) -> str | None:
    """The dotted key a ``ConfigError`` names (``stations[1].source``), if it names one."""
    match = _KEY.match(message)
    return match.group("key") if match else None


class SettingsPanel(QWidget):
    """Edit the engine's config: file, VLM backend and URL, station sources; Apply restarts."""

    TITLE = "Settings"
    restartRequested = Signal(object)  # the checked Config

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.path: Path | None = None
        self.config: Config | None = None           # the form's config once it checks
        self._raw: dict[str, Any] = {}
        self._base = Path.cwd()

        self.file = QLabel()
        self.file.setWordWrap(True)
        open_button = QPushButton("Open config file…")
        top = QHBoxLayout()
        top.addWidget(self.file, 1)
        top.addWidget(open_button)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)

        vlm_box = QGroupBox("Vision-language model")
        self.backend = QComboBox()
        self.backend.addItem("local: the batched OpenVINO detector", "local")
        self.backend.addItem("openai: an OpenAI-compatible server (OVMS, vLLM, Ollama)",
                             "openai")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://localhost:8000")
        form = QFormLayout(vlm_box)
        form.addRow("Backend", self.backend)
        form.addRow("Server URL", self.url)

        stations_box = QGroupBox("Stations")
        self.stations = QTableWidget(0, 2)
        self.stations.setHorizontalHeaderLabels(["Name", "Source"])
        self.stations.verticalHeader().hide()
        self.stations.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.stations.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.stations.setMinimumHeight(self.stations.fontMetrics().height() * 8)
        add_row, remove_row = QPushButton("Add station"), QPushButton("Remove selected")
        buttons = QHBoxLayout()
        buttons.addWidget(add_row)
        buttons.addWidget(remove_row)
        buttons.addStretch(1)
        col = QVBoxLayout(stations_box)
        col.addWidget(self.stations)
        col.addLayout(buttons)
        hint = QLabel("Sources: synthetic, rtsp://…, http://…, a video file path or usb:N.")
        hint.setWordWrap(True)
        set_colour(hint, MUTED_COLOUR)
        col.addWidget(hint)

        self.apply_button = QPushButton("Apply and restart the engine…")
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addLayout(top)
        lay.addWidget(self.verdict)
        lay.addWidget(vlm_box)
        lay.addWidget(stations_box, 1)
        lay.addWidget(self.apply_button)
        fill_with_scroll(self, body)

        open_button.clicked.connect(self._open_clicked)
        add_row.clicked.connect(self._add_row)
        remove_row.clicked.connect(self._remove_row)
        self.apply_button.clicked.connect(self._apply_clicked)
        self.backend.currentIndexChanged.connect(self._backend_changed)
        self.url.editingFinished.connect(self.check)
        self.stations.itemChanged.connect(self.check)
        self._load_running(bridge.engine.config)

    # ── where the form comes from ────────────────────────────────────────────────────────

    def _load_running(self, config: Config) -> None:
        self._raw = parse_yaml(config_to_yaml(config)) or {}
        self.file.setText("Config: the one the engine runs now")
        self._fill()

    def open_config(self, path: str | Path) -> bool:
        """Read ``path`` into the form and check it; False (error shown) if it cannot be read
        as a config at all."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = parse_yaml(text, str(path))
            if data is not None and not isinstance(data, Mapping):
                raise ConfigError(f"config error: {path}: expected a mapping of settings at "
                                  "the top level")
            data, _ = apply_seed_keys(data or {})
        except (OSError, UnicodeDecodeError) as exc:
            self._show_error(f"config error: {path}: cannot read it ({exc})")
            return False
        except ConfigError as exc:
            self._show_error(str(exc))
            return False
        self.path, self._base, self._raw = path, path.resolve().parent, dict(data)
        self.file.setText(f"Config: {path}")
        self._fill()
        return True

    def _open_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open an edgeapp config", "",
                                              "YAML config (*.yaml *.yml);;All files (*)")
        if name:
            self.open_config(name)

    def _fill(self) -> None:
        vlm = self._raw.get("vlm") if isinstance(self._raw.get("vlm"), Mapping) else {}
        self.backend.blockSignals(True)
        self.backend.setCurrentIndex(max(0, self.backend.findData(vlm.get("backend",
                                                                          "local"))))
        self.backend.blockSignals(False)
        self.url.setText(str(vlm.get("url") or ""))
        self.stations.blockSignals(True)
        self.stations.setRowCount(0)
        entries = self._raw.get("stations")
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            entry = {"source": entry} if isinstance(entry, str) else entry
            if isinstance(entry, Mapping):
                self._append(str(entry.get("name") or f"station-{i + 1}"),
                             str(entry.get("source", "synthetic")), dict(entry))
        self.stations.blockSignals(False)
        self._backend_changed()

    def _append(self, name: str, source: str, entry: dict[str, Any]) -> None:
        row = self.stations.rowCount()
        self.stations.insertRow(row)
        name_item = QTableWidgetItem(name)
        name_item.setData(Qt.ItemDataRole.UserRole, entry)  # its other keys (fps, seed …)
        self.stations.setItem(row, 0, name_item)
        self.stations.setItem(row, 1, QTableWidgetItem(source))

    def _backend_changed(self, *_: Any) -> None:
        local = self.backend.currentData() == "local"
        self.url.setEnabled(not local)
        self.url.setToolTip("used by the openai backend only" if local else "")
        self.check()

    def _add_row(self) -> None:
        names = {self.stations.item(r, 0).text() for r in range(self.stations.rowCount())}
        n = self.stations.rowCount() + 1
        while f"station-{n}" in names:
            n += 1
        self.stations.blockSignals(True)
        self._append(f"station-{n}", "synthetic", {"seed": n - 1})
        self.stations.blockSignals(False)
        self.check()

    def _remove_row(self) -> None:
        for index in sorted(self.stations.selectionModel().selectedRows(),
                            key=lambda i: -i.row()):
            self.stations.removeRow(index.row())
        self.check()

    # ── checking ─────────────────────────────────────────────────────────────────────────

    def form_data(self) -> dict[str, Any]:
        """The config mapping the form describes (the file's other keys kept as they were)."""
        data = copy.deepcopy(self._raw)
        vlm = dict(data.get("vlm") or {})
        vlm["backend"] = self.backend.currentData()
        if self.url.text().strip():
            vlm["url"] = self.url.text().strip()
        else:
            vlm.pop("url", None)
        data["vlm"] = vlm
        stations = []
        for row in range(self.stations.rowCount()):
            entry = dict(self.stations.item(row, 0).data(Qt.ItemDataRole.UserRole) or {})
            entry["name"] = self.stations.item(row, 0).text().strip()
            entry["source"] = self.stations.item(row, 1).text().strip()
            stations.append(entry)
        data["stations"] = stations
        return data

    def check(self, *_: Any) -> Config | None:
        """Check the form with the config checker; show the verdict, mark the bad field."""
        self._mark(None)
        try:
            self.config = config_from_dict(self.form_data(), base_dir=self._base)
        except ConfigError as exc:
            self.config = None
            self._show_error(str(exc))
            return None
        n = len(self.config.stations)
        self.verdict.setText(f"config ok: {n} station{'s' if n != 1 else ''}")
        set_colour(self.verdict, OK_COLOUR, bold=True)
        self.apply_button.setEnabled(True)
        return self.config

    def _show_error(self, message: str) -> None:
        key = error_key(message)
        text = message.removeprefix("config error: ")
        if key is not None and key not in ("vlm.url", "vlm.backend") \
                and not _STATION_KEY.match(key):
            text += " (not editable here: fix it in the file and open it again)"
        self.verdict.setText(text)
        set_colour(self.verdict, CRITICAL_COLOUR, bold=True)
        self.apply_button.setEnabled(False)
        self._mark(key)

    def _mark(self, key: str | None) -> None:
        """Colour the field that ``key`` names (and clear the others)."""
        self.url.setStyleSheet(_BAD if key == "vlm.url" else "")
        self.backend.setStyleSheet(_BAD if key == "vlm.backend" else "")
        match = _STATION_KEY.match(key or "")
        bad_row = int(match.group(1)) if match else -1
        self.stations.blockSignals(True)
        for row in range(self.stations.rowCount()):
            for col in (0, 1):
                item = self.stations.item(row, col)
                item.setBackground(CRITICAL_COLOUR.lighter(180) if row == bad_row
                                   else self.stations.palette().base().color())
        self.stations.blockSignals(False)

    # ── apply ────────────────────────────────────────────────────────────────────────────

    def _apply_clicked(self) -> None:
        config = self.check()
        if config is None:
            return
        n = len(config.stations)
        if self.confirm("Restart the engine?",
                        f"The engine stops (stations finish the orders on their counters) "
                        f"and starts again with {n} station{'s' if n != 1 else ''}."):
            self.restartRequested.emit(config)

    def confirm(self, title: str, text: str) -> bool:
        """Ask the operator (tests replace this)."""
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
