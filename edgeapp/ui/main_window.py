"""The operator window: camera tiles in the middle, the panels in docks around them.

The window appears before the engine exists (the tiles say "starting…"); when the engine is
built (``EngineHost.built``) the bridge and the panels are made and the engine is started.
Closing the window stops the engine first: the first close says "stopping…" while stations
finish their orders, a second close stops them at once; the window closes when the engine
has stopped.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QWidget

from edgeapp.config import Config
from edgeapp.ui.engine_host import EngineHost, EnginePhase
from edgeapp.ui.tiles import TileGrid
from edgeapp.ui.tiles.labels import ClassNames

logger = logging.getLogger(__name__)

# Where each panel docks first, by class name: per area, groups split side by side (stacked in
# the right column), the panels of a group tabbed. The operator's own layout wins once saved.
# A panel not named here joins the last group of the right column.
_R, _B = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
DEFAULT_LAYOUT: dict[Qt.DockWidgetArea, list[list[str]]] = {
    _R: [["SloPanel"], ["ControlPanel", "WorkersPanel", "SettingsPanel"]],
    _B: [["OrdersPanel"], ["NotificationsPanel", "HistoryPanel", "MetricsPanel"]],
}
# Sizes in pixels: the right column's width and its groups' heights (the rest to the last);
# the bottom row's height and its groups' widths.
DEFAULT_SIZES: dict[Qt.DockWidgetArea, tuple[int, list[int]]] = {
    _R: (480, [190, 600]),
    _B: (280, [640, 500]),
}
_LAYOUT_VERSION = 2  # bump when the dock names change, so an old saved layout is not applied


class MainWindow(QMainWindow):
    """Tiles, docks, the status bar; owns the bridge once the engine exists."""

    def __init__(self, config: Config, host: EngineHost, *, title: str = "demo",
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.host = host
        self.bridge: Any = None
        self.panels: dict[str, QWidget] = {}
        self.settings = settings if settings is not None else QSettings()
        self._close_requests = 0
        self._keep_open = False  # the engine stops for a benchmark, not for closing
        self.benchmark: Any = None  # the benchmark wizard, once opened
        self._groups: dict[Qt.DockWidgetArea, list[QDockWidget]] = {}
        self._restart_with: Config | None = None  # the config of the engine that comes next
        self.setObjectName("EdgeAppMainWindow")
        self.setWindowTitle(f"edgeapp — {title}")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self.grid = TileGrid([s.name for s in config.stations], ClassNames({}, ()), self)
        self.setCentralWidget(self.grid)
        self._phase = QLabel(EnginePhase.BUILDING.label)
        self._summary = QLabel("")
        self.statusBar().addPermanentWidget(self._summary)
        self.statusBar().addPermanentWidget(self._phase)
        self._make_menus()
        self.resize(1600, 1000)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._connect_host()

    def _connect_host(self) -> None:
        self.host.built.connect(self._on_built)
        self.host.phaseChanged.connect(self._on_phase)
        self.host.failed.connect(self._on_failed)
        self.host.finished.connect(self._on_finished)

    # ── menus ────────────────────────────────────────────────────────────────────────────

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.benchmark_action = QAction("&Benchmark…", self)
        self.benchmark_action.triggered.connect(self.open_benchmark)
        file_menu.addAction(self.benchmark_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        self.view_menu = self.menuBar().addMenu("&View")
        self.stats_action = QAction("Camera &stats overlay", self)
        self.stats_action.setCheckable(True)
        self.stats_action.setShortcut(QKeySequence("Ctrl+I"))
        self.stats_action.toggled.connect(lambda on: self.grid.set_show_stats(on))
        self.view_menu.addAction(self.stats_action)
        self.view_menu.addSeparator()

    def open_benchmark(self) -> None:
        """The benchmark wizard (one at a time): it runs Engines of its own, and asks to stop
        this window's engine first."""
        from edgeapp.ui.wizard import BenchmarkWizard

        if self.benchmark is None or not self.benchmark.isVisible():
            self.benchmark = BenchmarkWizard(self.config, host=self.host,
                                             stop_live=self._stop_for_benchmark, parent=self)
        self.benchmark.show()
        self.benchmark.raise_()

    def _stop_for_benchmark(self) -> None:
        """Stop the live engine and keep the window open (the tiles say it stopped)."""
        self._keep_open = True
        self.grid.set_engine_state(stopping=True)
        self.host.request_stop()

    # ── the engine's lifecycle ───────────────────────────────────────────────────────────

    def _on_built(self, engine: Any) -> None:
        """The engine exists: subscribe (bridge), make the panels, then start it."""
        from edgeapp.ui.bridge import EngineBridge
        from edgeapp.ui.panels import PANELS

        self.bridge = EngineBridge(engine, self)
        self.bridge.statusUpdated.connect(self._on_status)
        self.bridge.stationStateChanged.connect(self.grid.take_state_event)
        self.bridge.orderValidated.connect(self.grid.take_result)
        self.bridge.notification.connect(self._on_notification)
        self.grid.class_names = ClassNames.of(engine.config, engine.catalog.class_names)
        for tile in self.grid.tiles.values():
            tile.names = self.grid.class_names
        self.grid.engine = engine
        docks = [d for d in (self._make_dock(c) for c in PANELS) if d is not None]
        self._arrange(docks)
        state = self.settings.value("window/state")
        if state is None or not self.restoreState(state, _LAYOUT_VERSION):
            QTimer.singleShot(0, self._size_default_layout)
        self.host.go()

    def _make_dock(self, panel_class: type) -> QDockWidget | None:
        name = panel_class.__name__
        try:
            panel = panel_class(self.bridge, self)
        except Exception:  # one broken panel must not take the window with it
            logger.exception("panel %s failed to build", name)
            self.statusBar().showMessage(f"the {name} panel failed to open (see the log)")
            return None
        dock = QDockWidget(getattr(panel_class, "TITLE", name), self)
        dock.setObjectName(name)
        dock.setWidget(panel)
        self.view_menu.addAction(dock.toggleViewAction())
        self.panels[name] = panel
        restart = getattr(panel, "restartRequested", None)  # the Settings panel's Apply
        if restart is not None:
            restart.connect(self.restart_engine)
        return dock

    def _arrange(self, docks: list[QDockWidget]) -> None:
        """The default layout (DEFAULT_LAYOUT): the tiles keep the most room."""
        self.setCorner(Qt.Corner.BottomRightCorner, _R)
        by_name = {d.objectName(): d for d in docks}
        placed = {n for groups in DEFAULT_LAYOUT.values() for group in groups for n in group}
        layout = {area: [list(g) for g in groups] for area, groups in DEFAULT_LAYOUT.items()}
        layout[_R][-1] += [n for n in by_name if n not in placed]
        for area, groups in layout.items():
            orientation = (Qt.Orientation.Vertical if area == _R
                           else Qt.Orientation.Horizontal)
            previous: QDockWidget | None = None
            firsts: list[QDockWidget] = []
            for group in groups:
                members = [by_name[n] for n in group if n in by_name]
                if not members:
                    continue
                first = members[0]
                if previous is None:
                    self.addDockWidget(area, first)
                else:
                    self.splitDockWidget(previous, first, orientation)
                for dock in members[1:]:
                    self.tabifyDockWidget(first, dock)
                first.raise_()
                previous = first
                firsts.append(first)
            self._groups[area] = firsts

    def _size_default_layout(self) -> None:
        """DEFAULT_SIZES, once the docks are laid out (sizes given earlier are overruled)."""
        for area, firsts in self._groups.items():
            if not firsts:
                continue
            across = Qt.Orientation.Horizontal if area == _R else Qt.Orientation.Vertical
            along = Qt.Orientation.Vertical if area == _R else Qt.Orientation.Horizontal
            size, shares = DEFAULT_SIZES[area]
            self.resizeDocks(firsts[:1], [size], across)
            self.resizeDocks(firsts, shares[:len(firsts)], along)

    def _on_phase(self, phase: EnginePhase) -> None:
        self._phase.setText(f"engine {phase.label}")
        if phase is EnginePhase.STOPPING:
            self.grid.set_engine_state(stopping=True)

    def _on_failed(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}" if not str(error) else str(error)
        self.grid.set_engine_state(failed=text)
        self.statusBar().showMessage(f"the engine failed to start: {text}")

    def restart_engine(self, config: Config) -> None:
        """Stop the engine (stations finish their orders), then start one on ``config``: new
        tiles, new panels in the same layout."""
        if self._close_requests:
            return
        self._restart_with = config
        self._phase.setText("engine restarting…")
        if self.host.done:
            self._start_next_engine()
        else:
            self.grid.set_engine_state(stopping=True)
            self.host.request_stop()

    def _start_next_engine(self) -> None:
        config, self._restart_with = self._restart_with, None
        assert config is not None
        if self.bridge is not None:
            self.settings.setValue("window/state", self.saveState(_LAYOUT_VERSION))
            self.bridge.close()
            self.bridge.deleteLater()
            self.bridge = None
        for dock in self.findChildren(QDockWidget):
            self.view_menu.removeAction(dock.toggleViewAction())
            self.removeDockWidget(dock)
            dock.deleteLater()
        self.panels.clear()
        self._groups.clear()
        self.grid = TileGrid([s.name for s in config.stations], ClassNames({}, ()), self)
        self.grid.set_show_stats(self.stats_action.isChecked())
        self.setCentralWidget(self.grid)  # the old grid is deleted
        self.config, self._keep_open = config, False
        self.host = EngineHost(config, metrics=self.host.metrics)
        self._connect_host()
        self.host.begin()

    def _on_finished(self) -> None:
        """The engine has stopped: stop listening; start the next one, or close for real."""
        if self.bridge is not None:
            self.bridge.close()
        self.grid.stop()
        if self._restart_with is not None and not self._close_requests:
            self._start_next_engine()
            return
        if self._keep_open and not self._close_requests:
            self.statusBar().showMessage("the engine stopped for the benchmark; start edgeapp "
                                         "again to watch the stations")
            return
        if self._close_requests or self.host.phase is not EnginePhase.FAILED:
            self.close()

    def _on_status(self, status: Any) -> None:
        self.grid.take_status(status)
        orders = ", ".join(f"{n} {k}" for k, n in sorted(status.orders.items())) or "no orders"
        cpu = status.system.cpu_percent
        fps = status.fps
        self._summary.setText(
            f"{len(status.stations)} stations · {'–' if fps is None else f'{fps:.1f}'} fps · "
            f"{orders} · CPU {'n/a' if cpu is None else f'{cpu:.0f} %'}")

    def _on_notification(self, note: Any) -> None:
        if int(note.severity) >= 1:  # warnings and errors; the Notifications panel keeps all
            self.statusBar().showMessage(f"{note.part}: {note.text}", 15000)

    # ── closing ──────────────────────────────────────────────────────────────────────────

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """First close: stop the engine (stations finish their orders); second: at once. A
        benchmark in progress is cancelled first (the window closes once it has stopped)."""
        wizard = self.benchmark
        if wizard is not None and wizard.job is not None and wizard.job.running:
            event.ignore()
            wizard.finished.connect(self.close)
            wizard.reject()
            self.statusBar().showMessage("cancelling the benchmark first…")
            return
        if self.host.done:
            event.accept()
            return
        event.ignore()
        self._close_requests += 1
        if self._close_requests == 1:
            self.settings.setValue("window/geometry", self.saveGeometry())
            if self.bridge is not None:
                self.settings.setValue("window/state", self.saveState(_LAYOUT_VERSION))
            self.grid.set_engine_state(stopping=True)
            self._phase.setText("engine stopping… (close again to stop at once)")
            self.host.request_stop()
        else:
            self._phase.setText("engine stopping at once…")
            self.statusBar().showMessage("stopping at once: the orders on the counters end "
                                         "failed")
            self.host.hurry()
