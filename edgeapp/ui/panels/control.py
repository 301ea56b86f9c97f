"""Control: the stream-parameter sliders with Auto, the controller choice, autoscaling and the
stations. Every command goes through the bridge and returns at once; what the engine did comes
back in the next status (or as a notification when it refused)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from edgeapp.ui.panels.common import MUTED_COLOUR, Throttle, fill_with_scroll, fmt, set_colour
from edgeapp.ui.panels.parameter_sliders import ParameterSliders, camera_of
from edgeapp.ui.panels.station_list import StationList

CONTROLLERS = (("aif", "Active inference (AIF)"), ("heuristic", "Heuristic thresholds"),
               ("static", "Static (never changes)"))
_OVERRIDE_ARGS = {"fps_level": "fps", "resolution_level": "resolution", "grade": "grade"}
# The AIF agent builds for seconds the first time; the choice shown waits that long for it.
CONTROLLER_SETTLE_S = 60.0
SCALING_SETTLE_S = 3.0


class ControlPanel(QWidget):
    """Sliders for FPS, resolution and grade with Auto switches, the controller, autoscaling
    with its bounds, and add / remove station."""

    TITLE = "Control"

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        config = bridge.engine.config

        params_box = QGroupBox("Stream parameters")
        grid = QGridLayout(params_box)
        self.sliders = ParameterSliders(grid, self._pin, camera_of(config))
        hint = QLabel("Moving a slider pins that parameter (operator override); Auto hands it "
                      "back to the controller.")
        hint.setWordWrap(True)
        set_colour(hint, MUTED_COLOUR)
        grid.addWidget(hint, 6, 0, 1, 3)

        controller_box = QGroupBox("Controller")
        self.controller_buttons = QButtonGroup(self)
        col = QVBoxLayout(controller_box)
        for i, (kind, text) in enumerate(CONTROLLERS):
            button = QRadioButton(text)
            button.setProperty("kind", kind)
            self.controller_buttons.addButton(button, i)
            col.addWidget(button)
        self.controller_state = QLabel("waiting for the engine's first status…")
        self.controller_state.setWordWrap(True)
        set_colour(self.controller_state, MUTED_COLOUR)
        col.addWidget(self.controller_state)
        self._controller_sent: tuple[str, float] | None = None
        self.controller_buttons.idClicked.connect(self._controller_clicked)

        scaling_box = QGroupBox("Autoscaling")
        scaling_col = QVBoxLayout(scaling_box)
        row = QHBoxLayout()
        self.autoscaling = QCheckBox("Add and remove stations automatically")
        self.min_stations = QSpinBox()
        self.max_stations = QSpinBox()
        for spin, text in ((self.min_stations, "min "), (self.max_stations, "max ")):
            spin.setRange(1, 256)
            spin.setPrefix(text)
        self.min_stations.setValue(config.scaling.min_stations)
        self.max_stations.setValue(config.scaling.max_stations)
        self.autoscaling.setChecked(config.scaling.enabled)
        scaling_col.addWidget(self.autoscaling)
        scaling_col.addLayout(row)
        row.addWidget(QLabel("Stations:"))
        row.addWidget(self.min_stations)
        row.addWidget(self.max_stations)
        row.addStretch(1)
        self._scaling_throttle = Throttle(400, self._send_scaling, self)
        self._scaling_sent_at = 0.0
        self.autoscaling.toggled.connect(self._scaling_edited)
        self.min_stations.valueChanged.connect(self._scaling_edited)
        self.max_stations.valueChanged.connect(self._scaling_edited)

        stations_box = QGroupBox("Stations")
        self.stations = StationList(config)
        QVBoxLayout(stations_box).addWidget(self.stations)
        self.stations.addRequested.connect(bridge.add_station)
        self.stations.removeRequested.connect(bridge.remove_station)

        body = QWidget()
        lay = QVBoxLayout(body)
        for box in (params_box, controller_box, scaling_box, stations_box):
            lay.addWidget(box)
        lay.addStretch(1)
        fill_with_scroll(self, body)
        bridge.statusUpdated.connect(self.show_status)

    # ── commands ─────────────────────────────────────────────────────────────────────────

    def _pin(self, key: str, level: int | None) -> None:
        """Pin ``key`` at ``level``, or hand it back to the controller (``None``)."""
        if level is not None:
            self.bridge.set_override(**{_OVERRIDE_ARGS[key]: level})
            return
        # The engine releases all pins at once: release, then pin the others again.
        keep = {_OVERRIDE_ARGS[row.key]: row.level_at(row.slider.value())
                for row in self.sliders.rows if row.key != key and not row.auto.isChecked()}
        self.bridge.clear_override()
        if keep:
            self.bridge.set_override(**keep)

    def _controller_clicked(self, button_id: int) -> None:
        kind = CONTROLLERS[button_id][0]
        self._controller_sent = (kind, time.monotonic())
        self.controller_state.setText(f"switching to the {kind} controller…")
        self.bridge.set_controller(kind)

    def _scaling_edited(self, *_: Any) -> None:
        self.min_stations.setMaximum(self.max_stations.value())
        self.max_stations.setMinimum(self.min_stations.value())
        self._scaling_sent_at = time.monotonic()
        self._scaling_throttle.push((self.autoscaling.isChecked(), self.min_stations.value(),
                                     self.max_stations.value()))

    def _send_scaling(self, value: tuple[bool, int, int]) -> None:
        on, low, high = value
        self.bridge.set_autoscaling(on, low, high)

    # ── status ───────────────────────────────────────────────────────────────────────────

    def show_status(self, status: Any) -> None:
        """Paint an ``EngineStatus``: parameters in force, controller, autoscaling, stations."""
        control = status.control
        self.sliders.show(status.parameters, control.controller)
        self._show_controller(control)
        self._show_scaling(control)
        self.stations.show_stations(status.stations)

    def _show_controller(self, control: Any) -> None:
        sent = self._controller_sent
        if sent is not None and (sent[0] == control.controller
                                 or time.monotonic() - sent[1] > CONTROLLER_SETTLE_S):
            self._controller_sent = sent = None
        kind = sent[0] if sent is not None else control.controller
        for button in self.controller_buttons.buttons():
            if button.property("kind") == kind and not button.isChecked():
                button.setChecked(True)
        if sent is not None:
            return
        state = "ready" if control.ready else "starting…"
        self.controller_state.setText(
            f"{control.controller}: {state} · {control.decisions} decisions · "
            f"step p99 {fmt(control.step_ms_p99, 'ms')}"
            + (" · at its lowest settings" if control.at_lowest else ""))

    def _show_scaling(self, control: Any) -> None:
        if self._scaling_throttle.busy or time.monotonic() - self._scaling_sent_at < \
                SCALING_SETTLE_S:
            return
        for widget, value in ((self.autoscaling, control.autoscaling),
                              (self.min_stations, control.min_stations),
                              (self.max_stations, control.max_stations)):
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setMaximum(256)
                widget.setMinimum(1)
                widget.setValue(int(value))
            widget.blockSignals(False)
        self.min_stations.setMaximum(self.max_stations.value())
        self.max_stations.setMinimum(self.min_stations.value())
