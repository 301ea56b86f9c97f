"""Controllers: step down under CRITICAL, back up when the load falls, calm on a steady load,
and what the AIF agent learns. Driven through ``ElasticityController`` as the Engine will."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edgeapp.config.schema import SloConfig, StreamConfig
from edgeapp.engine.api import Slo, StreamParameters
from edgeapp.engine.bench.controller import controller_for, simulate, summarise
from edgeapp.engine.control.elasticity import ElasticityController
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.simulator import SCENARIOS
from edgeapp.engine.control.slo import MetricsSample

ADAPTIVE = ["aif", "heuristic"]

TOP = StreamConfig(grade="high")  # the controllers start at the top of every level


def drive(control: ElasticityController, capacity: Callable[[int], float],
          steps: int) -> list[StreamParameters]:
    """Feed ``steps`` samples from a plant whose frame latency is 1000 ms x work / capacity."""
    seen = []
    for t in range(steps):
        load = control.space.relative_compute(control.parameters) / capacity(t)
        control.step(MetricsSample(frame_latency_p95_ms=1000.0 * load))
        seen.append(control.parameters)
    return seen


@pytest.mark.parametrize("kind", ADAPTIVE)
def test_sustained_critical_steps_down_to_the_lowest(kind: str) -> None:
    control = ElasticityController(SloConfig(), TOP, kind)  # type: ignore[arg-type]
    assert control.parameters == control.space.highest()
    seen = drive(control, lambda t: 0.01, 60)  # everything overloads
    assert control.at_lowest, f"{kind} ended at {control.parameters}"
    quality = [control.space.quality(p) for p in seen]
    assert quality[-1] == 0.0 and quality[5] < 1.0, "it must start stepping down at once"


@pytest.mark.parametrize("kind", ADAPTIVE)
def test_steps_back_up_when_the_load_falls(kind: str) -> None:
    # Given a load only the cheapest settings can carry, then capacity for all of them
    control = ElasticityController(SloConfig(), TOP, kind)  # type: ignore[arg-type]
    seen = drive(control, lambda t: 0.6 if t < 200 else 20.0, 800)
    space = control.space
    # When the load falls, then quality comes back up to the top
    assert space.quality(seen[199]) < 0.5, f"{kind} did not step down: {seen[199]}"
    assert space.quality(seen[-1]) == 1.0, f"{kind} stayed at {seen[-1]}"


def test_aif_waits_for_a_step_up_to_settle_before_the_next() -> None:
    # Given the AIF controller at the lowest settings with room for everything
    control = ElasticityController(SloConfig(), TOP, "aif",
                                   initial=ParameterSpace.from_config(StreamConfig()).lowest())
    seen = [control.parameters, *drive(control, lambda t: 1000.0, 40)]
    # Then it climbs to the top, but never raises on two decisions less than 3 apart
    space = control.space
    ups = [t for t in range(1, len(seen))
           if any(a > b for a, b in zip(space.ranks(seen[t]), space.ranks(seen[t - 1]),
                                        strict=True))]
    assert seen[-1] == space.highest(), seen[-1]
    assert all(b - a >= 3 for a, b in zip(ups, ups[1:], strict=False)), ups


def test_aif_steps_up_only_into_the_compute_that_is_spare() -> None:
    # Given the AIF at the lowest settings, every SLO OK, with a machine half busy
    lowest = ParameterSpace.from_config(StreamConfig()).lowest()
    control = ElasticityController(SloConfig(), TOP, "aif", initial=lowest)
    space = control.space
    for _ in range(60):
        work = space.relative_compute(control.parameters) / space.relative_compute(lowest)
        control.step(MetricsSample(frame_latency_p95_ms=100.0, utilisation=0.5 * work))
        # Then it never takes a setting the spare compute cannot carry
        assert space.relative_compute(control.parameters) / space.relative_compute(lowest) \
            <= 0.85 / 0.5, control.parameters
    # but it does climb as far as the spare compute allows
    assert control.parameters != lowest
    # And with the machine saturated it stays where it is
    control = ElasticityController(SloConfig(), TOP, "aif", initial=lowest)
    for _ in range(30):
        control.step(MetricsSample(frame_latency_p95_ms=100.0, utilisation=0.98))
    assert control.parameters == lowest


def test_aif_is_calm_on_a_steady_load() -> None:
    control = controller_for("aif", SloConfig(), StreamConfig())
    run = simulate(control, "aif", SCENARIOS["steady"], seed=3)
    figures = summarise(run)
    assert figures["changes_per_min"] <= 3, figures
    # and it sits mostly at the best setting the capacity allows, not at the bottom
    assert figures["quality"] >= 0.8, figures


def test_aif_learns_which_settings_keep_the_slos() -> None:
    # Given a plant that only the cheaper half of the settings can carry, and no utilisation
    # figure (so nothing but the SLO states tells the agent where the overload starts)
    control = ElasticityController(SloConfig(), TOP, "aif")
    drive(control, lambda t: 0.35, 300)
    from edgeapp.engine.control.aif import AifController  # JAX: imported only when needed

    agent = control.controller
    assert isinstance(agent, AifController)
    likelihood = agent.likelihood.expected()[list(Slo).index(Slo.FRAME_LATENCY)]
    space = control.space
    top, low = space.ranks(space.highest()), space.ranks(space.lowest())
    bad_at_top = 1.0 - likelihood[(0, *top)]
    bad_at_low = 1.0 - likelihood[(0, *low)]
    # Before it learnt anything every setting was believed bad with 1 - 1/1.0025 = 0.0025.
    assert bad_at_top > 0.05 > 0.0025 > 0.0001 > bad_at_low, (bad_at_top, bad_at_low)
    # and it has learnt the pattern, not one setting: the dearest third of the settings is
    # believed far likelier to miss the SLO than the cheapest third
    settings = sorted(space.all(), key=space.relative_compute)
    bad = [1.0 - likelihood[(0, *space.ranks(p))] for p in settings]
    third = len(bad) // 3
    assert np.mean(bad[-third:]) > 20 * np.mean(bad[:third]), bad  # 42x measured


# ── acting only where it can help ────────────────────────────────────────────────────────


@pytest.mark.parametrize("kind", ADAPTIVE)
def test_no_frames_flowing_is_not_room_to_raise_into(kind: str) -> None:
    # Given a controller at the lowest settings, every SLO quiet, but no frame coming back
    # (the only camera is down): nothing is measured but the machine's idle CPU
    lowest = ParameterSpace.from_config(StreamConfig()).lowest()
    control = ElasticityController(SloConfig(), TOP, kind, initial=lowest)  # type: ignore[arg-type]
    for _ in range(40):
        control.step(MetricsSample(frame_latency_p95_ms=None, queue_size=0, fps=None,
                                   utilisation=0.05, frames=0))
    # Then it holds its parameters
    assert control.parameters == lowest, f"{kind} raised with no frames flowing"
    # And once frames flow with room to spare, it raises as before
    for _ in range(40):
        control.step(MetricsSample(frame_latency_p95_ms=50.0, queue_size=0, fps=5.0,
                                   utilisation=0.05, frames=5))
    assert control.parameters != lowest, f"{kind} never raised once frames flowed"


@pytest.mark.parametrize("kind", ADAPTIVE)
def test_a_stream_away_stops_raises_but_not_cuts(kind: str) -> None:
    # Given one stream reconnecting while the others flow with room to spare
    lowest = ParameterSpace.from_config(StreamConfig()).lowest()
    control = ElasticityController(SloConfig(), TOP, kind, initial=lowest)  # type: ignore[arg-type]
    for _ in range(40):
        control.step(MetricsSample(frame_latency_p95_ms=50.0, fps=5.0, utilisation=0.05,
                                   frames=5, streams_away=1))
    # Then nothing is raised: its load will be back
    assert control.parameters == lowest, f"{kind} raised into an absent stream's room"
    # And an overload is still answered by stepping down
    control = ElasticityController(SloConfig(), TOP, kind)  # type: ignore[arg-type]
    for _ in range(20):
        control.step(MetricsSample(frame_latency_p95_ms=5000.0, fps=5.0, frames=5,
                                   streams_away=1))
    assert control.parameters != control.space.highest()


@pytest.mark.parametrize("kind", ADAPTIVE)
def test_an_order_latency_the_vlm_causes_does_not_cut_the_streams(kind: str) -> None:
    # Given the top settings, frames flowing fine, and verdicts 12 s late because the VLM
    # server hangs (none of it is the streams' part)
    control = ElasticityController(SloConfig(), TOP, kind)  # type: ignore[arg-type]
    for _ in range(30):
        control.step(MetricsSample(frame_latency_p95_ms=200.0, queue_size=0, fps=15.0,
                                   frames=15, order_latency_s=12.0,
                                   order_latency_streams_s=0.3))
    # Then the order latency SLO shows it, but FPS and resolution stay where they are
    (order,) = [s for s in control.slo_status if s.slo is Slo.ORDER_LATENCY]
    assert order.state.name == "CRITICAL" and order.value == 12.0
    assert control.parameters == control.space.highest(), control.parameters
    # And a slow order the streams cause (the VLM on these cores, or slow detection) is
    # still answered by stepping down
    for _ in range(30):
        control.step(MetricsSample(frame_latency_p95_ms=200.0, queue_size=0, fps=15.0,
                                   frames=15, order_latency_s=12.0))
    assert control.parameters != control.space.highest()
