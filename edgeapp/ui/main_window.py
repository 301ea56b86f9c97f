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

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QWidget

from edgeapp.config import Config
from edgeapp.ui.engine_host import EngineHost, EnginePhase
from edgeapp.ui.tiles import TileGrid
from edgeapp.ui.tiles.labels import ClassNames

logger = logging.getLogger(__name__)

# Where each panel docks first (by class name); the operator's own layout wins once saved.
# Panels not named here go to the right, tabbed with the others there.
DOCK_AREAS = {
    "OrdersPanel": Qt.DockWidgetArea.BottomDockWidgetArea,
    "HistoryPanel": Qt.DockWidgetArea.BottomDockWidgetArea,
    "MetricsPanel": Qt.DockWidgetArea.BottomDockWidgetArea,
    "NotificationsPanel": Qt.DockWidgetArea.BottomDockWidgetArea,
}
_LAYOUT_VERSION = 1  # bump when the dock names change, so an old saved layout is not applied


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
        host.built.connect(self._on_built)
        host.phaseChanged.connect(self._on_phase)
        host.failed.connect(self._on_failed)
        host.finished.connect(self._on_finished)

    # ── menus ────────────────────────────────────────────────────────────────────────────

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        self.view_menu = self.menuBar().addMenu("&View")
        self.stats_action = QAction("Camera &stats overlay", self)
        self.stats_action.setCheckable(True)
        self.stats_action.setShortcut(QKeySequence("Ctrl+I"))
        self.stats_action.toggled.connect(self.grid.set_show_stats)
        self.view_menu.addAction(self.stats_action)
        self.view_menu.addSeparator()

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
        for panel_class in PANELS:
            self._add_panel(panel_class)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state, _LAYOUT_VERSION)
        self.host.go()

    def _add_panel(self, panel_class: type) -> None:
        name = panel_class.__name__
        try:
            panel = panel_class(self.bridge, self)
        except Exception:  # one broken panel must not take the window with it
            logger.exception("panel %s failed to build", name)
            self.statusBar().showMessage(f"the {name} panel failed to open (see the log)")
            return
        dock = QDockWidget(getattr(panel_class, "TITLE", name), self)
        dock.setObjectName(name)
        dock.setWidget(panel)
        area = DOCK_AREAS.get(name, Qt.DockWidgetArea.RightDockWidgetArea)
        same_area = [d for d in self.findChildren(QDockWidget)
                     if d is not dock and self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if same_area:
            self.tabifyDockWidget(same_area[0], dock)
            same_area[0].raise_()
        self.view_menu.addAction(dock.toggleViewAction())
        self.panels[name] = panel

    def _on_phase(self, phase: EnginePhase) -> None:
        self._phase.setText(f"engine {phase.label}")
        if phase is EnginePhase.STOPPING:
            self.grid.set_engine_state(stopping=True)

    def _on_failed(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}" if not str(error) else str(error)
        self.grid.set_engine_state(failed=text)
        self.statusBar().showMessage(f"the engine failed to start: {text}")

    def _on_finished(self) -> None:
        """The engine has stopped: stop listening and close for real."""
        if self.bridge is not None:
            self.bridge.close()
        self.grid.stop()
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
        """First close: stop the engine (stations finish their orders); second: at once."""
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
