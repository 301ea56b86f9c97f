"""The engine-control thread: once per control interval, measure, decide, apply, tell.

:class:`ControlLoop` owns the :class:`ElasticityController` of a running Engine. Each
``controller.interval_s`` it takes one :class:`MetricsSample` from the Engine (``sample``),
steps the controller, hands a parameter change to the Engine (``apply``: pacers and workers)
and publishes the ``SloChanged`` / ``ParametersChanged`` events. The operator's override and
a controller switch come in from API threads; every change is applied in the order it was
decided.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edgeapp.config.schema import ControllerConfig, SloConfig, StreamConfig
from edgeapp.engine.api import (
    EngineEvent,
    Notification,
    ParametersChanged,
    Severity,
    StreamParameters,
)
from edgeapp.engine.control.controllers import KINDS, ControllerKind
from edgeapp.engine.control.elasticity import ControlEvent, ElasticityController
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.metrics import LatencyWindow
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import InputError

logger = logging.getLogger(__name__)


class ControlLoop:
    """Drives the stream parameters of a running Engine (``start`` / ``stop`` / ``join``)."""

    def __init__(self, slo: SloConfig, stream: StreamConfig, controller: ControllerConfig, *,
                 grades: tuple[Grade, ...] = tuple(Grade),
                 sample: Callable[[], MetricsSample],
                 apply: Callable[[StreamParameters], None],
                 publish: Callable[[EngineEvent], None]) -> None:
        space = ParameterSpace.from_config(stream, grades)
        # Static until start(): the configured controller is built on the control thread (the
        # AIF agent takes seconds to compile), and the parameters hold meanwhile.
        self.elasticity = ElasticityController(slo, stream, "static",
                                               initial=space.starting(stream), space=space)
        self.interval_s = controller.interval_s
        self._kind: ControllerKind = controller.kind
        self._sample, self._apply, self._publish = sample, apply, publish
        self._order = threading.Lock()  # decide-and-apply, one change at a time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-control", daemon=True)
        self.last_change: ParametersChanged | None = None
        self.decisions = 0
        self.step_time = LatencyWindow(4096)  # seconds per decision (SLO monitor + controller)

    @property
    def kind(self) -> ControllerKind:
        """The controller asked for (it may still be starting: see ``status``)."""
        return self._kind

    @property
    def ready(self) -> bool:
        """True once the controller asked for is the one deciding."""
        return self.elasticity.kind == self._kind

    def start(self) -> None:
        """Start the control thread."""
        self._thread.start()

    def stop(self) -> None:
        """End the control thread after its current decision."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the control thread; True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # ── API threads ──────────────────────────────────────────────────────────────────────

    def set_override(self, *, fps_level: int | None = None, resolution_level: int | None = None,
                     grade: Grade | str | int | None = None) -> None:
        """Pin the given levels until :meth:`clear_override` (applied at once)."""
        with self._order:
            event = self.elasticity.set_override(fps_level=fps_level,
                                                 resolution_level=resolution_level, grade=grade)
            if event is not None:
                self._emit([event])

    def clear_override(self) -> None:
        """Release the operator's pins; the controller goes on from the parameters in force."""
        with self._order:
            pinned = self.elasticity.override
            self.elasticity.clear_override()
        if pinned:
            self._notify(Severity.INFO, "operator override released; the "
                                        f"{self.elasticity.kind} controller decides")

    def set_controller(self, kind: str) -> None:
        """Switch controllers (building the AIF agent the first time takes seconds)."""
        if kind not in KINDS:
            raise InputError(f"controller kind: expected one of {', '.join(KINDS)}, "
                             f"got {kind!r}")
        self._kind = kind  # type: ignore[assignment]
        self.elasticity.set_controller(self._kind)
        self._notify(Severity.INFO, f"stream parameters now set by the {kind} controller")

    # ── control thread ───────────────────────────────────────────────────────────────────

    def _run(self) -> None:
        if self.elasticity.kind != self._kind and not self._stop.is_set():
            try:
                self.set_controller(self._kind)
            except Exception as exc:  # keep the parameters where they are; say why
                logger.exception("controller %s failed to start", self._kind)
                self._notify(Severity.ERROR, f"the {self._kind} controller did not start "
                                             f"({exc!r}); parameters stay fixed")
        next_at = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + self.interval_s, time.monotonic())
            try:
                self.step()
            except Exception as exc:  # one bad sample must not end control
                logger.exception("control step failed")
                self._notify(Severity.ERROR, f"controller step failed: {exc!r}")

    def step(self) -> None:
        """One decision: sample, decide, apply, publish."""
        sample = self._sample()
        with self._order:
            started = time.perf_counter()
            events = self.elasticity.step(sample)
            self.step_time.add(time.perf_counter() - started)
            self._emit(events)
            self.decisions += 1

    def _notify(self, severity: Severity, text: str) -> None:
        self._publish(Notification(severity, text, "controller"))

    def _emit(self, events: list[ControlEvent]) -> None:
        for event in events:
            if isinstance(event, ParametersChanged):
                self._apply(event.new)
                self.last_change = event
            self._publish(event)
