"""What the Engine drives: SLO monitor, the active controller, and the operator's override.

Once per control interval the Engine calls :meth:`ElasticityController.step` with a
:class:`MetricsSample`; it gets back the events to publish (``SloChanged``,
``ParametersChanged``) and reads :attr:`~ElasticityController.parameters` to send FPS and
resolution to the pacers and the grade to the workers.

The controller acts only where it can help: while no frames flow, no SLO says anything about
the parameters, so they hold and the controller neither decides nor learns; while a stream is
away (reconnecting) nothing is raised; and the order latency it judges is only the part the
streams can shorten (see :mod:`.slo`). Thread-safe: the API thread may set
an override or switch the controller while the control thread steps.
"""

from __future__ import annotations

import threading

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import ParametersChanged, SetBy, SloChanged, StreamParameters
from edgeapp.engine.control.controllers import Controller, ControllerKind, make_controller
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import MetricsSample, SloMonitor, SloReading
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import InputError

ControlEvent = SloChanged | ParametersChanged


class ElasticityController:
    """Keeps the SLOs by choosing stream parameters; the operator can pin any of them."""

    def __init__(self, slo: SloConfig, stream: StreamConfig, kind: ControllerKind = "aif", *,
                 initial: StreamParameters | None = None,
                 space: ParameterSpace | None = None) -> None:
        self.space = space or ParameterSpace.from_config(stream)
        self._monitor = SloMonitor(slo)
        self._lock = threading.Lock()
        self._built: dict[ControllerKind, Controller] = {}
        self._controller = self._build(kind)
        self._parameters = self.space.clamp(initial or self.space.initial(stream))
        self._pinned: dict[str, int] = {}  # StreamParameters field -> operator's level

    # --- what the Engine reads -------------------------------------------------------------

    @property
    def parameters(self) -> StreamParameters:
        """The parameters in force."""
        return self._parameters

    @property
    def source(self) -> SetBy:
        """``OPERATOR`` while an override holds, else ``CONTROLLER``."""
        return SetBy.OPERATOR if self._pinned else SetBy.CONTROLLER

    @property
    def kind(self) -> ControllerKind:
        """The active controller's kind."""
        return self._controller.kind

    @property
    def controller(self) -> Controller:
        """The active controller (the AIF one exposes what it learnt: ``likelihood``)."""
        return self._controller

    @property
    def override(self) -> dict[str, int]:
        """The pinned fields of :class:`StreamParameters` and their levels (empty: none)."""
        with self._lock:
            return dict(self._pinned)

    @property
    def slo_status(self) -> tuple[SloReading, ...]:
        """Every SLO's latest value, limit and state."""
        with self._lock:
            return self._monitor.status

    @property
    def at_lowest(self) -> bool:
        """True when every parameter the controller may move (not pinned) is at its lowest:
        only fewer stations can help now. (A static controller moves nothing: the Engine
        treats it as off.)"""
        with self._lock:
            return self._pin(self.space.lowest()) == self._parameters

    # --- what the Engine calls -------------------------------------------------------------

    def step(self, sample: MetricsSample) -> list[ControlEvent]:
        """Take one metrics sample, let the controller decide; return the events to publish."""
        with self._lock:
            events: list[ControlEvent] = list(self._monitor.update(sample))
            if not sample.frames_flow:
                # Nothing flows: quiet SLOs are not room to spare, nor a lesson about the
                # parameters in force. Hold them until frames come again.
                return events
            # The controller also decides under an override: it keeps learning what the
            # operator's settings do, and it still moves the parameters that are not pinned.
            decision = self._controller.decide(self._monitor.measured, self._parameters,
                                               frozenset(self._pinned),
                                               utilisation=sample.utilisation,
                                               may_raise=sample.streams_away == 0)
            new = self._pin(decision.parameters)
            if new != self._parameters:
                events.append(ParametersChanged(self._parameters, new, SetBy.CONTROLLER,
                                                decision.reason))
                self._parameters = new
            return events

    def check_override(self, *, fps_level: int | None = None,
                       resolution_level: int | None = None,
                       grade: Grade | str | int | None = None) -> dict[str, int]:
        """The pins these levels make (field -> level); ``InputError`` for one out of range.

        A grade without a model of its own pins the grade whose model would serve it.
        """
        pins = {"fps_level": fps_level, "resolution_level": resolution_level,
                "grade": None if grade is None else int(self.space.nearest_grade(
                    Grade.parse(grade)))}
        for name, count in (("fps_level", len(self.space.fps_levels)),
                            ("resolution_level", len(self.space.resolution_levels))):
            level = pins[name]
            if level is not None and not 0 <= level < count:
                raise InputError(f"{name}: expected 0..{count - 1}, got {level}")
        return {k: v for k, v in pins.items() if v is not None}

    def set_override(self, *, fps_level: int | None = None, resolution_level: int | None = None,
                     grade: Grade | str | int | None = None) -> ParametersChanged | None:
        """Pin the given parameters at the operator's levels until :meth:`clear_override`
        (see :meth:`check_override`); the change, if any."""
        pins = self.check_override(fps_level=fps_level, resolution_level=resolution_level,
                                   grade=grade)
        with self._lock:
            self._pinned.update(pins)
            new = self._pin(self._parameters)
            if new == self._parameters:
                return None
            event = ParametersChanged(self._parameters, new, SetBy.OPERATOR,
                                      "operator override")
            self._parameters = new
            return event

    def clear_override(self) -> None:
        """Release every pin; the controller carries on from the parameters in force."""
        with self._lock:
            self._pinned.clear()

    def set_controller(self, kind: ControllerKind) -> None:
        """Switch to ``kind``; a controller used before comes back with what it learnt.

        Building the AIF controller the first time takes seconds (JAX import, compile and
        warm-up): :meth:`build` it off any thread that must stay responsive first.
        """
        controller = self.build(kind)
        with self._lock:
            self._controller = controller

    def is_built(self, kind: ControllerKind) -> bool:
        """Whether ``kind`` was built before (switching to it is then instant)."""
        with self._lock:
            return kind in self._built

    def build(self, kind: ControllerKind) -> Controller:
        """The controller of ``kind``, built once (any thread; seconds for ``aif``)."""
        with self._lock:
            built = self._built.get(kind)
        return built if built is not None else self._build(kind)

    def _build(self, kind: ControllerKind) -> Controller:
        controller = make_controller(kind, self.space)
        with self._lock:
            return self._built.setdefault(kind, controller)

    def _pin(self, params: StreamParameters) -> StreamParameters:
        """``params`` with the operator's pinned levels."""
        pins = self._pinned
        return StreamParameters(pins.get("fps_level", params.fps_level),
                                pins.get("resolution_level", params.resolution_level),
                                Grade(pins.get("grade", params.grade)))
