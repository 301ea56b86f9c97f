"""The grid of camera tiles: one per station, laid out as the stations come and go.

Frames are pulled, never pushed (STYLE "The window"): a QTimer at the display rate asks the
engine for each station's newest frame *unless* the tile has it already, so a slow window
drops frames instead of queueing them, and a poll without a new frame copies nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QGridLayout, QWidget

from edgeapp.ui.tiles.labels import ClassNames
from edgeapp.ui.tiles.model import TileModel
from edgeapp.ui.tiles.tile import CameraTile

# Tiles that are not live repaint this often (their frame's age is part of what is drawn).
AGE_REPAINT_S = 1.0
# Verdict badges fade smoothly: a fading tile repaints this often.
FADE_REPAINT_S = 0.1


class TileGrid(QWidget):
    """The camera tiles, laid out in a near-square grid; double-click enlarges one."""

    def __init__(self, names: Iterable[str], class_names: ClassNames,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_names = class_names
        self.tiles: dict[str, CameraTile] = {}
        self.enlarged: str | None = None
        self.show_stats = False
        self.engine: Any = None
        self.on_tick: Callable[[float, float], None] | None = None  # the bench: wall, CPU s
        self._last_repaint: dict[str, float] = {}
        self._reported: set[str] = set()  # stations the engine's status has listed
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.setSpacing(4)
        self.set_stations(names)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(display_interval_ms())
        self._timer.timeout.connect(self.pull_frames)
        self._timer.start()

    # ── stations ─────────────────────────────────────────────────────────────────────────

    def set_stations(self, names: Iterable[str]) -> None:
        """Show exactly these stations (in this order): new tiles added, gone ones removed."""
        wanted = list(dict.fromkeys(names))
        for name in [n for n in self.tiles if n not in wanted]:
            tile = self.tiles.pop(name)
            self._layout.removeWidget(tile)
            tile.deleteLater()
            if self.enlarged == name:
                self.enlarged = None
        for name in wanted:
            if name not in self.tiles:
                tile = CameraTile(TileModel(name), self.class_names, self)
                tile.show_stats = self.show_stats
                tile.doubleClicked.connect(self.toggle_enlarged)
                self.tiles[name] = tile
        if list(self.tiles) != wanted:
            self.tiles = {name: self.tiles[name] for name in wanted}
        self._relayout()

    def _relayout(self) -> None:
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        shown = [self.enlarged] if self.enlarged in self.tiles else list(self.tiles)
        columns = grid_columns(len(shown), self.width() / max(1, self.height()))
        for i, name in enumerate(shown):
            self._layout.addWidget(self.tiles[name], i // columns, i % columns)
        for name, tile in self.tiles.items():
            tile.setVisible(name in shown)
        for r in range(self._layout.rowCount()):
            self._layout.setRowStretch(r, 1 if r < math.ceil(len(shown) / columns) else 0)
        for c in range(self._layout.columnCount()):
            self._layout.setColumnStretch(c, 1 if c < columns else 0)

    def toggle_enlarged(self, name: str) -> None:
        """Show ``name`` alone, or the whole grid again."""
        self.enlarged = None if self.enlarged == name else name
        self._relayout()

    def set_show_stats(self, on: bool) -> None:
        """The stats overlay on every tile."""
        self.show_stats = on
        for tile in self.tiles.values():
            tile.show_stats = on
            tile.update()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        """A wide window wants more columns than a tall one."""
        super().resizeEvent(event)
        self._relayout()

    # ── what the engine says ─────────────────────────────────────────────────────────────

    def take_status(self, status: Any) -> None:
        """An ``EngineStatus``: the station set, each station's state and rates.

        A station the engine has not reported yet keeps its tile ("starting…": the engine
        adds the config's stations one by one); one it reported before and no longer does
        is gone."""
        reported = [s.name for s in status.stations]
        gone = self._reported - set(reported)
        self._reported |= set(reported)
        self._reported -= gone
        self.set_stations([*(n for n in self.tiles if n not in gone),
                           *(n for n in reported if n not in self.tiles)])
        self.class_names.grade = status.parameters.grade
        for st in status.stations:
            self.tiles[st.name].model.take_status(st)
            self.tiles[st.name].update()

    def take_state_event(self, event: Any) -> None:
        """A ``StationStateChanged``: the tile changes at once, not at the next poll."""
        tile = self.tiles.get(event.station)
        if tile is None:
            self.set_stations([*self.tiles, event.station])
            tile = self.tiles[event.station]
        tile.model.take_state_event(event)
        tile.update()

    def take_result(self, result: Any) -> None:
        """An ``OrderResult``: the station's verdict badge."""
        tile = self.tiles.get(result.station_id)
        if tile is not None:
            status = getattr(result.status, "value", result.status)
            tile.model.take_verdict(str(result.order_id), str(status))
            tile.update()

    def set_engine_state(self, *, stopping: bool = False, failed: str | None = None) -> None:
        """The window is stopping the engine, or its start failed: every tile says so."""
        for tile in self.tiles.values():
            tile.model.stopping = stopping
            tile.model.engine_failed = failed
            tile.update()

    # ── frames ───────────────────────────────────────────────────────────────────────────

    def pull_frames(self) -> None:
        """Each visible tile takes its station's newest frame if it is new (timer slot)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        engine, now = self.engine, time.monotonic()
        for name, tile in self.tiles.items():
            if not tile.isVisible():
                continue
            model = tile.model
            frame = (engine.latest_frame(name, unless_seq=model.seq)
                     if engine is not None else None)
            if frame is not None:
                model.take_frame(frame, now)
                tile.update()
                self._last_repaint[name] = now
            elif now - self._last_repaint.get(name, 0.0) >= self._repaint_every(model, now):
                tile.update()  # the age, the fade, or "no new frame" must move on
                self._last_repaint[name] = now
        if self.on_tick is not None:
            self.on_tick(time.perf_counter() - t0, time.thread_time() - c0)

    @staticmethod
    def _repaint_every(model: TileModel, now: float) -> float:
        if model.verdict is not None and 0.0 < model.verdict.opacity(now) < 1.0:
            return FADE_REPAINT_S
        return AGE_REPAINT_S

    def stop(self) -> None:
        """Stop pulling frames (the engine is going away)."""
        self._timer.stop()
        self.engine = None


def grid_columns(count: int, aspect: float) -> int:
    """Columns for ``count`` 16:9 tiles in an area of width/height ``aspect``: the most
    columns that keep tiles largest."""
    if count <= 1:
        return 1
    best, best_area = 1, 0.0
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        # tile size when the area is 1 high and ``aspect`` wide, tiles kept at 16:9
        w = min(aspect / columns, (1.0 / rows) * 16 / 9)
        if w > best_area + 1e-9:
            best, best_area = columns, w
    return best


def display_interval_ms() -> int:
    """The primary screen's refresh period (60 Hz when it does not say)."""
    screen = QGuiApplication.primaryScreen()
    rate = screen.refreshRate() if screen is not None else 0.0
    return max(8, round(1000.0 / (rate if rate >= 24 else 60.0)))
