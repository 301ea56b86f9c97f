"""The three stream-parameter sliders (FPS, resolution, grade), each with its value in force,
who set it and an Auto switch: Auto = the controller decides, moving the slider = override."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QSlider

from edgeapp.ui.panels.common import MUTED_COLOUR, OK_COLOUR, Throttle, grade_text, set_colour

THROTTLE_MS = 250
# After a send, the status may still show the old value for a beat: the slider keeps the
# operator's value until the status agrees or this long has passed.
SETTLE_S = 2.0


@dataclass(frozen=True)
class Camera:
    """What the sliders' fractions mean in frames/s and pixels, where all cameras agree."""

    fps: float | None
    size: tuple[int, int] | None


class ParameterRow:
    """One parameter: label, slider (left = lowest quality), value, who set it, Auto."""

    def __init__(self, key: str, title: str, grid: QGridLayout, row: int,
                 send: Callable[[str, int | None], None]) -> None:
        self.key = key                  # the override key: fps_level / resolution_level / grade
        self._send = send
        self.levels: tuple[Any, ...] = ()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setMinimumWidth(120)
        self.value = QLabel("n/a")
        self.set_by = QLabel("n/a")
        self.auto = QCheckBox("Auto")
        self.auto.setChecked(True)
        self.auto.setToolTip("Auto: the controller sets this parameter. Moving the slider "
                             "pins it (operator override) until Auto is switched back on.")
        self._throttle = Throttle(THROTTLE_MS, lambda level: self._send(self.key, level))
        self._sent_at = 0.0
        self._sent: int | None = None
        # Two lines per parameter, so a narrow dock clips nothing: the slider, then the value
        # in force and who set it.
        grid.addWidget(QLabel(title), 2 * row, 0)
        grid.addWidget(self.slider, 2 * row, 1)
        grid.addWidget(self.auto, 2 * row, 2)
        line = QHBoxLayout()
        line.addWidget(self.value)
        line.addSpacing(12)
        line.addWidget(self.set_by, 1)
        grid.addLayout(line, 2 * row + 1, 1, 1, 2)
        self.slider.valueChanged.connect(self._moved)
        self.auto.toggled.connect(self._auto_toggled)

    # ── operator ─────────────────────────────────────────────────────────────────────────

    def level_at(self, position: int) -> int:
        """The level index (what ``set_override`` takes) of a slider position."""
        return position

    def _moved(self, position: int) -> None:
        level = self.level_at(position)
        self.auto.blockSignals(True)
        self.auto.setChecked(False)
        self.auto.blockSignals(False)
        self._mark_sent(level)
        self._throttle.push(level)

    def _auto_toggled(self, on: bool) -> None:
        level = None if on else self.level_at(self.slider.value())
        self._mark_sent(level)
        self._send(self.key, level)

    def _mark_sent(self, level: int | None) -> None:
        self._sent, self._sent_at = level, time.monotonic()

    # ── status ───────────────────────────────────────────────────────────────────────────

    def show(self, level: int, pinned: int | None, text: str, set_by: str, reason: str) -> None:
        """Paint the level in force; the slider is left alone while the operator moves it."""
        settling = time.monotonic() - self._sent_at < SETTLE_S and self._sent != pinned
        if not (self.slider.isSliderDown() or self._throttle.busy or settling):
            self.slider.blockSignals(True)
            self.slider.setValue(self.position_of(level))
            self.slider.blockSignals(False)
            self.auto.blockSignals(True)
            self.auto.setChecked(pinned is None)
            self.auto.blockSignals(False)
        self.value.setText(text)
        self.set_by.setText(f"set by {set_by}")
        self.set_by.setToolTip(reason)
        set_colour(self.set_by, OK_COLOUR if set_by == "operator" else MUTED_COLOUR)

    def set_levels(self, levels: tuple[Any, ...]) -> None:
        """The levels this parameter moves in (set once, when the first status comes)."""
        if levels == self.levels:
            return
        self.levels = levels
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(levels) - 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(levels) > 1)
        if len(levels) <= 1:
            self.slider.setToolTip("only one level is available")

    def position_of(self, level: int) -> int:
        """The slider position of a level index."""
        return level


class ReversedRow(ParameterRow):
    """FPS and resolution: level 0 is the highest, shown at the right end of the slider."""

    def level_at(self, position: int) -> int:
        return len(self.levels) - 1 - position

    def position_of(self, level: int) -> int:
        return len(self.levels) - 1 - level


class GradeRow(ParameterRow):
    """Grade: the slider steps through the grades that have a model; the level is the grade."""

    def level_at(self, position: int) -> int:
        return int(self.levels[position]) if self.levels else position

    def position_of(self, level: int) -> int:
        values = [int(g) for g in self.levels]
        return values.index(level) if level in values else 0


class ParameterSliders:
    """The three rows in a grid; ``send(key, level | None)`` pins or releases a parameter."""

    def __init__(self, grid: QGridLayout, send: Callable[[str, int | None], None],
                 camera: Camera) -> None:
        self.camera = camera
        self.fps = ReversedRow("fps_level", "FPS", grid, 0, send)
        self.resolution = ReversedRow("resolution_level", "Resolution", grid, 1, send)
        self.grade = GradeRow("grade", "Model grade", grid, 2, send)
        grid.setColumnStretch(1, 1)

    @property
    def rows(self) -> tuple[ParameterRow, ...]:
        """FPS, resolution, grade."""
        return self.fps, self.resolution, self.grade

    def show(self, params: Any, controller: str) -> None:
        """Paint a ``ParametersStatus``."""
        self.fps.set_levels(tuple(params.fps_levels))
        self.resolution.set_levels(tuple(params.resolution_levels))
        self.grade.set_levels(tuple(params.grades))
        override = dict(params.override)
        auto_by = "config" if _value(params.set_by) == "config" else f"{controller} controller"
        for row, level, text in (
            (self.fps, params.fps_level, self._fps_text(params.fps)),
            (self.resolution, params.resolution_level, self._size_text(params.resolution)),
            (self.grade, int(params.grade), grade_text(params.grade)),
        ):
            pinned = override.get(row.key)
            row.show(level, pinned, text, "operator" if pinned is not None else auto_by,
                     params.reason)

    def _fps_text(self, fraction: float) -> str:
        if self.camera.fps is None:
            return f"{fraction * 100:.0f} % of source"
        return f"{self.camera.fps * fraction:.1f} fps ({fraction * 100:.0f} %)"

    def _size_text(self, scale: float) -> str:
        if self.camera.size is None:
            return f"{scale * 100:.0f} % of source"
        w, h = self.camera.size
        return f"{round(w * scale)}×{round(h * scale)} ({scale * 100:.0f} %)"


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def camera_of(config: Any) -> Camera:
    """The cameras' common rate and (synthetic) size, where every station agrees."""
    stations = tuple(config.stations)
    rates = {s.fps for s in stations}
    sizes = {(s.width, s.height) for s in stations if s.source == "synthetic"}
    all_synthetic = all(s.source == "synthetic" for s in stations)
    return Camera(fps=rates.pop() if len(rates) == 1 and all_synthetic else None,
                  size=sizes.pop() if len(sizes) == 1 and all_synthetic else None)

