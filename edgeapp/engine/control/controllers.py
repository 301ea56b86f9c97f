"""The controllers' one interface, the static and threshold-heuristic baselines, and a factory.

A controller is called once per control interval with the SLO states just observed, the
parameters that were in force while they were measured (set by it or by the operator) and the
parameters the operator has pinned, and returns the parameters to run next with a reason.
The AIF agent lives in :mod:`.aif`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from edgeapp.engine.api import SloState, StreamParameters
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import SloStates
from edgeapp.errors import InputError

ControllerKind = Literal["aif", "heuristic", "static"]
KINDS: tuple[ControllerKind, ...] = ("aif", "heuristic", "static")
#: The StreamParameters fields, in the order of a step ``(fps, resolution, grade)``.
FIELDS = ("fps_level", "resolution_level", "grade")


@dataclass(frozen=True)
class Decision:
    """The parameters a controller wants next and why."""

    parameters: StreamParameters
    reason: str


class Controller(Protocol):
    """Chooses the next stream parameters from the SLO states."""

    kind: ControllerKind

    def decide(self, slo: SloStates, current: StreamParameters,
               pinned: frozenset[str] = frozenset(), *,
               utilisation: float | None = None, may_raise: bool = True) -> Decision:
        """The parameters to run next, given the SLO states measured under ``current``;
        ``pinned`` names the fields (of ``FIELDS``) the operator holds, which must not move;
        ``utilisation`` is the share of the machine's compute in use (None: not measured);
        without ``may_raise`` no parameter may go up (a stream is away: its load is not in
        the figures, and the room it leaves is not room to raise into)."""
        ...


class StaticController:
    """Never changes anything: the parameters stay what they are."""

    kind: ControllerKind = "static"

    def decide(self, slo: SloStates, current: StreamParameters,
               pinned: frozenset[str] = frozenset(), *,
               utilisation: float | None = None, may_raise: bool = True) -> Decision:
        """Keep ``current``."""
        return Decision(current, "static")


# Which parameter the heuristic gives up first: FPS costs the least quality per step
# (1/3 of a 4-level range vs 1/2 of a 3-level one); raising goes the other way round.
_DOWN_ORDER = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
_UP_ORDER = ((0, 0, 1), (0, 1, 0), (1, 0, 0))
_NAMES = ("fps", "resolution", "grade")


class HeuristicController:
    """Threshold baseline: one step down on CRITICAL, one step up after a sustained all-OK."""

    kind: ControllerKind = "heuristic"

    def __init__(self, space: ParameterSpace, *, up_after: int = 20, cooldown: int = 3) -> None:
        self.space = space
        self.up_after = up_after  # decisions in a row with every SLO OK before a step up
        self.cooldown = cooldown  # decisions after a change before the next one (queue drains)
        self._ok_streak = 0
        self._since_change = cooldown
        self._last: StreamParameters | None = None

    def decide(self, slo: SloStates, current: StreamParameters,
               pinned: frozenset[str] = frozenset(), *,
               utilisation: float | None = None, may_raise: bool = True) -> Decision:
        """Step down on CRITICAL, up after ``up_after`` all-OK decisions, else keep."""
        if self._last is not None and current != self._last:
            self._since_change = 0  # the operator moved it: wait as after our own change
        self._since_change += 1
        worst = max(slo.values(), default=SloState.OK)
        self._ok_streak = self._ok_streak + 1 if worst == SloState.OK else 0
        decision = Decision(current, "hold")
        if self._since_change > self.cooldown:
            if worst == SloState.CRITICAL:
                decision = self._move(current, _DOWN_ORDER, pinned, "an SLO is CRITICAL")
            elif self._ok_streak >= self.up_after and may_raise:
                decision = self._move(current, _UP_ORDER, pinned,
                                      f"every SLO OK for {self._ok_streak} decisions")
        if decision.parameters != current:
            self._since_change = 0
            self._ok_streak = 0
        self._last = decision.parameters
        return decision

    def _move(self, current: StreamParameters, order: tuple[tuple[int, int, int], ...],
              pinned: frozenset[str], why: str) -> Decision:
        for steps in order:
            factor = [abs(s) for s in steps].index(1)
            moved = self.space.step(current, steps)
            if moved != current and FIELDS[factor] not in pinned:
                name = _NAMES[factor]
                return Decision(moved, f"{why}: {name} {'up' if sum(steps) > 0 else 'down'}")
        return Decision(current, f"{why}: nothing left to move")


def make_controller(kind: ControllerKind, space: ParameterSpace) -> Controller:
    """A new controller of ``kind`` over ``space`` (the AIF one compiles and warms up first)."""
    if kind == "aif":
        from edgeapp.engine.control.aif import AifController  # JAX: seconds to import

        return AifController(space)
    if kind == "heuristic":
        return HeuristicController(space)
    if kind == "static":
        return StaticController()
    raise InputError(f"controller kind: expected one of {', '.join(KINDS)}, got {kind!r}")
