"""The engine's lifecycle behind the window: built, started and stopped off the GUI thread.

One Python thread, ``edgeapp-window-engine``, does every slow step: it imports and builds the
``Engine`` (seconds: OpenVINO, the catalog, the controller), hands it to the GUI thread, waits
until the window has subscribed (so no event of the start is missed), starts it (models
compile), then waits for the window to ask for the stop and stops it (stations finish their
orders). The GUI thread only receives signals, so the window never freezes.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, Signal

from edgeapp.config import Config
from edgeapp.errors import EdgeAppError

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class EnginePhase(str, enum.Enum):
    """Where the engine's lifecycle is, as the window shows it."""

    BUILDING = "building"    # importing and building the Engine
    STARTING = "starting"    # Engine.start(): workers, models, stations
    RUNNING = "running"
    STOPPING = "stopping"    # stations finish the order on their counter
    STOPPED = "stopped"
    FAILED = "failed"        # the start failed; ``EngineHost.error`` says why

    @property
    def label(self) -> str:
        """The phase in the operator's words."""
        return {"building": "starting…", "starting": "starting…",
                "stopping": "stopping…"}.get(self.value, self.value)


class EngineHost(QObject):
    """Builds, starts and stops one Engine on its own thread; reports by queued signals."""

    built = Signal(object)        # the Engine, not yet started: subscribe, then call go()
    phaseChanged = Signal(object)  # EnginePhase
    failed = Signal(object)       # the exception that ended the start
    finished = Signal()           # the engine has stopped (or never started); thread ended

    def __init__(self, config: Config, parent: QObject | None = None, *,
                 metrics: tuple[int, str] | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.metrics = metrics  # (port, bind): serve Prometheus metrics while it runs
        self.metrics_server: Any = None
        self.engine: Any = None
        self.phase = EnginePhase.BUILDING
        self.error: BaseException | None = None
        self._go = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeapp-window-engine")

    def begin(self) -> None:
        """Build the engine on the lifecycle thread (``built`` follows)."""
        self._thread.start()

    def go(self) -> None:
        """Start the built engine (the window has subscribed to it)."""
        self._go.set()

    def request_stop(self) -> None:
        """Stop the engine, letting stations finish their orders (``finished`` follows)."""
        self._stop.set()
        self._go.set()  # a window closed before the engine was handed over

    def hurry(self) -> None:
        """Cut the running stop short: stations stop without finishing their orders."""
        self._stop.set()
        self._go.set()
        if self.engine is not None:
            self.engine.hurry()

    @property
    def done(self) -> bool:
        """True once the lifecycle thread has ended (or never began)."""
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the lifecycle thread; True when it has ended."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _set_phase(self, phase: EnginePhase) -> None:
        self.phase = phase
        self.phaseChanged.emit(phase)

    def _run(self) -> None:
        try:
            self._build_and_start()
        except BaseException as exc:  # shown in the window; the thread must still end cleanly
            if not isinstance(exc, EdgeAppError):
                logger.exception("the engine failed to start")
            self.error = exc
            self._set_phase(EnginePhase.FAILED)
            self.failed.emit(exc)
        else:
            if self.engine is not None:
                self._stop.wait()
                self._set_phase(EnginePhase.STOPPING)
                self._stop_metrics()
                self.engine.stop(timeout=STOP_TIMEOUT_S)
                self._set_phase(EnginePhase.STOPPED)
        self.finished.emit()

    def _build_and_start(self) -> None:
        from edgeapp.engine.engine import Engine  # seconds of imports: off the GUI thread

        if self._stop.is_set():
            return
        self.engine = Engine(self.config)
        self.built.emit(self.engine)
        self._go.wait()
        if self._stop.is_set():
            self.engine = None  # never started: nothing to stop
            return
        self._set_phase(EnginePhase.STARTING)
        self.engine.start()
        if self.metrics is not None:
            from edgeapp.engine.metrics.prometheus import start_metrics_server

            try:
                self.metrics_server = start_metrics_server(self.engine, *self.metrics)
            except BaseException:
                self.engine.stop(timeout=STOP_TIMEOUT_S, finish_orders=False)
                raise
        self._set_phase(EnginePhase.RUNNING)

    def _stop_metrics(self) -> None:
        server, self.metrics_server = self.metrics_server, None
        if server is not None:
            server.stop()
            server.join(5.0)
