"""The operator's override holds until released; switching controllers; the events."""

from __future__ import annotations

import pytest

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import ParametersChanged, Slo, SloChanged, SloState, StreamParameters
from edgeapp.engine.control.elasticity import ElasticityController
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import InputError

OVERLOADED = MetricsSample(frame_latency_p95_ms=1800.0)
CALM = MetricsSample(frame_latency_p95_ms=50.0)

TOP = StreamConfig(grade="high")  # the controllers start at the top of every level


def steps(control: ElasticityController, sample: MetricsSample, n: int) -> list[object]:
    return [event for _ in range(n) for event in control.step(sample)]


@pytest.mark.parametrize("kind", ["aif", "heuristic"])
def test_override_holds_under_critical_and_is_released(kind: str) -> None:
    control = ElasticityController(SloConfig(), TOP, kind)  # type: ignore[arg-type]
    # Given the operator pins full FPS and the HIGH grade
    event = control.set_override(fps_level=0, grade="high")
    assert event is None, "already there: nothing changes"
    assert control.source == "operator"
    assert control.override == {"fps_level": 0, "grade": 2}
    # When every SLO goes CRITICAL, then only the resolution (not pinned) goes down
    steps(control, OVERLOADED, 40)
    pinned = control.parameters
    assert (pinned.fps_level, pinned.grade) == (0, Grade.HIGH), pinned
    assert pinned.resolution_level == len(control.space.resolution_levels) - 1
    assert control.at_lowest, "nothing the controller may move can go lower"
    # When the operator releases it, then the controller moves them again, from there
    control.clear_override()
    assert control.source == "controller" and control.override == {}
    assert not control.at_lowest
    steps(control, OVERLOADED, 60)
    assert control.at_lowest


def test_override_moves_the_parameters_and_says_who() -> None:
    control = ElasticityController(SloConfig(), TOP, "heuristic")
    event = control.set_override(resolution_level=2, grade=Grade.LOW)
    assert isinstance(event, ParametersChanged)
    assert event.source == "operator" and event.reason == "operator override"
    assert event.old == control.space.highest()
    assert event.new == StreamParameters(0, 2, Grade.LOW) == control.parameters
    # calm load for long: the heuristic would step up, but the pins hold
    steps(control, CALM, 100)
    assert (control.parameters.resolution_level, control.parameters.grade) == (2, Grade.LOW)


def test_controller_events_carry_source_and_reason() -> None:
    control = ElasticityController(SloConfig(), TOP, "heuristic")
    events = steps(control, OVERLOADED, 5)
    assert SloChanged(Slo.FRAME_LATENCY, SloState.OK, SloState.CRITICAL, 1800.0, 1000.0) in events
    changes = [e for e in events if isinstance(e, ParametersChanged)]
    assert changes and all(e.source == "controller" for e in changes)
    assert "CRITICAL" in changes[0].reason and "fps down" in changes[0].reason


def test_bad_override_levels_are_refused() -> None:
    control = ElasticityController(SloConfig(), TOP, "static")
    with pytest.raises(InputError, match="fps_level"):
        control.set_override(fps_level=4)
    with pytest.raises(InputError, match="grade"):
        control.set_override(grade="huge")
    assert control.override == {}


def test_switching_controllers_keeps_what_the_aif_learnt() -> None:
    control = ElasticityController(SloConfig(), TOP, "aif")
    steps(control, OVERLOADED, 10)
    from edgeapp.engine.control.aif import AifController  # JAX: imported only when needed

    agent = control.controller
    assert isinstance(agent, AifController)
    learnt = agent.likelihood.counts
    control.set_controller("static")
    assert control.kind == "static"
    before = control.parameters
    steps(control, OVERLOADED, 10)
    assert control.parameters == before, "static never moves"
    control.set_controller("aif")
    assert control.kind == "aif" and control.controller is agent
    assert (agent.likelihood.counts == learnt).all()
    with pytest.raises(InputError, match="controller kind"):
        control.set_controller("psychic")  # type: ignore[arg-type]
