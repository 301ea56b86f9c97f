"""The one bridge between the engine's threads and Qt: engine events become queued signals.

Widgets never touch the engine's threads (STYLE "The window"): the engine calls ``_on_event``
on its event thread, the bridge re-emits each event as a Qt signal, and Qt queues it to the
GUI thread because the bridge lives there. ``status()`` is polled by a QTimer on the GUI
thread. Control calls go through the bridge, so a refused call becomes a ``notification``
signal instead of an exception inside a Qt slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from edgeapp.engine.api import Notification, Severity
from edgeapp.errors import EdgeAppError

logger = logging.getLogger(__name__)

STATUS_INTERVAL_MS = 500


class EngineBridge(QObject):
    """Engine events as queued Qt signals on the GUI thread, plus the control calls."""

    orderValidated = Signal(object)       # OrderResult
    sloChanged = Signal(object)           # SloChanged
    parametersChanged = Signal(object)    # ParametersChanged
    scalingDecision = Signal(object)      # ScalingDecision
    stationStateChanged = Signal(object)  # StationStateChanged
    notification = Signal(object)         # Notification
    workerChanged = Signal(object)        # WorkerJoined / WorkerLeft
    statusUpdated = Signal(object)        # EngineStatus, every STATUS_INTERVAL_MS

    # Event class name -> signal attribute. By name, not by class: the events move from
    # edgeapp.engine.events to edgeapp.engine.api, and either module's class must arrive.
    _ROUTES = {
        "OrderValidated": "orderValidated", "SloChanged": "sloChanged",
        "ParametersChanged": "parametersChanged", "ScalingDecision": "scalingDecision",
        "StationStateChanged": "stationStateChanged", "Notification": "notification",
        "WorkerJoined": "workerChanged", "WorkerLeft": "workerChanged",
    }

    def __init__(self, engine: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.last_status: Any = None
        self._unsubscribe: Callable[[], None] | None = engine.subscribe(self._on_event)
        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_INTERVAL_MS)
        self._timer.timeout.connect(self.poll_status)
        self._timer.start()

    # ── events (engine thread -> GUI thread) ─────────────────────────────────────────────

    def _on_event(self, event: Any) -> None:
        """Called on the engine's event thread: emit only (Qt queues it to the GUI thread)."""
        name = self._ROUTES.get(type(event).__name__)
        if name is None:
            logger.debug("engine event %s has no signal", type(event).__name__)
            return
        payload = event.result if name == "orderValidated" else event
        try:
            getattr(self, name).emit(payload)
        except RuntimeError:  # the bridge's Qt half was deleted (its window is gone)
            self._drop_subscription()

    def poll_status(self) -> None:
        """Read ``engine.status()`` now and emit ``statusUpdated`` (GUI thread)."""
        try:
            status = self.engine.status()
        except Exception as exc:  # the window must keep running; say what broke, once a poll
            logger.exception("engine status failed")
            self._notify(Severity.ERROR, f"engine status failed: {exc!r}")
            return
        self.last_status = status
        self.statusUpdated.emit(status)

    # ── control (GUI thread -> engine) ───────────────────────────────────────────────────

    def set_override(self, **levels: Any) -> bool:
        """Pin parameters (``fps=`` / ``resolution=`` level, ``grade=``); True if accepted."""
        return self._call("set_override", **levels)

    def clear_override(self) -> bool:
        """Give every parameter back to the controller."""
        return self._call("clear_override")

    def set_controller(self, kind: str) -> bool:
        """Switch the controller (``aif`` / ``heuristic`` / ``static``)."""
        return self._call("set_controller", kind)

    def set_autoscaling(self, on: bool, min_stations: int | None = None,
                        max_stations: int | None = None) -> bool:
        """Autoscaling on or off, with its bounds."""
        return self._call("set_autoscaling", on, min_stations, max_stations)

    def add_station(self, station: Any) -> bool:
        """Start one more station (a ``StationConfig``)."""
        return self._call("add_station", station)

    def remove_station(self, name: str) -> bool:
        """Drain and remove the station called ``name``."""
        return self._call("remove_station", name)

    def close(self) -> None:
        """Stop listening: unsubscribe from the engine and stop the status timer."""
        self._timer.stop()
        self._drop_subscription()

    def _drop_subscription(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> bool:
        call = getattr(self.engine, method, None)
        if call is None:
            self._notify(Severity.WARNING, f"this engine cannot {method.replace('_', ' ')}")
            return False
        try:
            call(*args, **kwargs)
        except EdgeAppError as exc:
            self._notify(Severity.WARNING, f"{method.replace('_', ' ')} refused: {exc}")
            return False
        return True

    def _notify(self, severity: Severity, text: str) -> None:
        self.notification.emit(Notification(severity, text, part="window"))
