"""The engine-control thread: once per control interval, measure, decide, apply, tell.

:class:`ControlLoop` owns the :class:`ElasticityController` of a running Engine. Each
``controller.interval_s`` it takes one :class:`MetricsSample` from the Engine (``sample``),
steps the controller, hands a parameter change to the Engine (``apply``: pacers and workers),
publishes the ``SloChanged`` / ``ParametersChanged`` events and lets ``after_step`` (the
autoscaler) look.

The operator's calls (override, release, controller switch) return at once: what can be
checked at once (a level out of range, an unknown controller) raises ``InputError``; the rest
is queued onto the control thread, applied in order between decisions, and its outcome is an
event. A controller that was never built is built on the ``engine-control-build`` thread (the
AIF agent compiles for seconds), while the one in force keeps deciding.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from edgeapp.config.schema import ControllerConfig, SloConfig, StreamConfig
from edgeapp.engine.api import (
    EngineEvent,
    Notification,
    ParametersChanged,
    SetBy,
    Severity,
    StreamParameters,
)
from edgeapp.engine.control.controllers import KINDS, Controller, ControllerKind
from edgeapp.engine.control.elasticity import ControlEvent, ElasticityController
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.metrics import LatencyWindow
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import InputError

logger = logging.getLogger(__name__)

_STOP = ("stop",)


class ControlLoop:
    """Drives the stream parameters of a running Engine (``start`` / ``stop`` / ``join``)."""

    def __init__(self, slo: SloConfig, stream: StreamConfig, controller: ControllerConfig, *,
                 grades: tuple[Grade, ...] = tuple(Grade),
                 sample: Callable[[], MetricsSample],
                 apply: Callable[[StreamParameters], None],
                 publish: Callable[[EngineEvent], None],
                 after_step: Callable[[], object] | None = None) -> None:
        space = ParameterSpace.from_config(stream, grades)
        # Static until the configured controller is built (the AIF agent takes seconds to
        # compile, on the build thread); the parameters hold meanwhile.
        self.elasticity = ElasticityController(slo, stream, "static",
                                               initial=space.starting(stream), space=space)
        self.interval_s = controller.interval_s
        self._kind: ControllerKind = controller.kind
        self._sample, self._apply, self._publish = sample, apply, publish
        self._after_step = after_step
        self._commands: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-control", daemon=True)
        self._builder: threading.Thread | None = None
        self._builder_lock = threading.Lock()
        self._building = False
        self.last_change: ParametersChanged | None = None
        self.last_step_down: float | None = None  # monotonic time the controller last lowered
        self.decisions = 0
        self.step_time = LatencyWindow(4096)  # seconds per decision (SLO monitor + controller)

    @property
    def kind(self) -> ControllerKind:
        """The controller asked for (it may still be starting: see ``ready``)."""
        return self._kind

    @property
    def ready(self) -> bool:
        """True once the controller asked for is the one deciding."""
        return self.elasticity.kind == self._kind

    def start(self) -> None:
        """Start the control thread (and the build of the configured controller)."""
        self._thread.start()
        self._switch_when_built(self._kind)

    def stop(self) -> None:
        """End the control thread after its current decision."""
        self._stopping.set()
        self._commands.put(_STOP)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the control thread and a controller build; True when both have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._thread, self._builder):
            if thread is not None and thread.ident is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t is not None and t.is_alive() for t in (self._thread, self._builder))

    # ── API threads: check, queue, return ────────────────────────────────────────────────

    def set_override(self, *, fps_level: int | None = None, resolution_level: int | None = None,
                     grade: Grade | str | int | None = None) -> None:
        """Pin the given levels until :meth:`clear_override`; ``InputError`` at once for a
        level out of range. The change arrives as ``ParametersChanged``."""
        pins = self.elasticity.check_override(fps_level=fps_level,
                                              resolution_level=resolution_level, grade=grade)
        if not pins:
            raise InputError("set_override: give at least one of fps, resolution, grade")
        self._commands.put(("override", pins))

    def clear_override(self) -> None:
        """Release the operator's pins (a ``Notification`` says so); the controller goes on
        from the parameters in force."""
        self._commands.put(("release",))

    def set_controller(self, kind: str) -> None:
        """Switch controllers; ``InputError`` at once for an unknown kind. The switch is a
        ``Notification`` once the controller decides (the first AIF build takes seconds)."""
        if kind not in KINDS:
            raise InputError(f"controller kind: expected one of {', '.join(KINDS)}, "
                             f"got {kind!r}")
        self._kind = kind  # type: ignore[assignment]
        self._switch_when_built(self._kind)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the control thread, between two decisions (it announces itself)."""
        self._commands.put(("call", fn))

    def _switch_when_built(self, kind: ControllerKind) -> None:
        with self._builder_lock:
            if self.elasticity.is_built(kind):
                self._commands.put(("switch", kind))
            elif not self._building:  # else the build running goes on to what is asked
                self._building = True
                self._builder = threading.Thread(target=self._build, args=(kind,),
                                                 name="engine-control-build", daemon=True)
                self._builder.start()

    def _build(self, kind: ControllerKind) -> None:
        """Build thread: make the controller asked for (and whatever is asked meanwhile),
        then let the control thread switch to it."""
        while True:
            try:
                self.elasticity.build(kind)
            except Exception as exc:  # keep the parameters where they are; say why
                logger.exception("controller %s failed to start", kind)
                with self._builder_lock:
                    self._building = False
                self._notify(Severity.ERROR, f"the {kind} controller did not start ({exc!r}); "
                                             f"the {self.elasticity.kind} controller goes on")
                return
            with self._builder_lock:
                wanted = self._kind
                if wanted == kind or self.elasticity.is_built(wanted) \
                        or self._stopping.is_set():
                    self._building = False
                    self._commands.put(("switch", wanted))
                    return
            kind = wanted

    # ── control thread ───────────────────────────────────────────────────────────────────

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while True:
            try:
                command = self._commands.get(timeout=max(0.0, next_at - time.monotonic()))
            except queue.Empty:
                command = None
            if command is _STOP or self._stopping.is_set():
                return
            try:
                if command is not None:
                    self._do(command)
                    continue
                next_at = max(next_at + self.interval_s, time.monotonic())
                self.step()
                if self._after_step is not None:
                    self._after_step()
            except Exception as exc:  # one bad sample or command must not end control
                logger.exception("control step failed")
                self._notify(Severity.ERROR, f"controller step failed: {exc!r}")

    def _do(self, command: tuple[Any, ...]) -> None:
        """Apply one queued operator call and announce its outcome."""
        what = command[0]
        if what == "override":
            event = self.elasticity.set_override(**command[1])
            if event is not None:
                self._emit([event])
            else:
                self._notify(Severity.INFO, "operator override holds "
                                            f"{_words(command[1])} (already in force)")
        elif what == "release":
            pinned = self.elasticity.override
            self.elasticity.clear_override()
            self._notify(Severity.INFO, "operator override released; the "
                                        f"{self.elasticity.kind} controller decides"
                         if pinned else "no operator override to release")
        elif what == "call":
            command[1]()
        elif what == "switch":
            kind: ControllerKind = command[1]
            if kind != self._kind or self.elasticity.kind == kind:
                return  # superseded by a later switch, or already in force
            self.elasticity.set_controller(kind)
            self._notify(Severity.INFO, f"stream parameters now set by the {kind} controller")

    def step(self) -> None:
        """One decision: sample, decide, apply, publish."""
        sample = self._sample()
        started = time.perf_counter()
        events = self.elasticity.step(sample)
        self.step_time.add(time.perf_counter() - started)
        self._emit(events)
        self.decisions += 1

    @property
    def controller(self) -> Controller:
        """The controller deciding now."""
        return self.elasticity.controller

    def _emit(self, events: list[ControlEvent]) -> None:
        space = self.elasticity.space
        for event in events:
            if isinstance(event, ParametersChanged):
                self._apply(event.new)
                self.last_change = event
                if event.source is SetBy.CONTROLLER and \
                        space.quality(event.new) < space.quality(event.old):
                    self.last_step_down = time.monotonic()
            self._publish(event)

    def _notify(self, severity: Severity, text: str) -> None:
        self._publish(Notification(severity, text, "controller"))


def _words(pins: dict[str, int]) -> str:
    """``fps level 2, grade LOW`` for the pins of an override."""
    return ", ".join(f"grade {Grade(v).name}" if k == "grade" else
                     f"{k.replace('_level', '')} level {v}" for k, v in pins.items())
