"""The Active-Inference controller: a pymdp (JAX) agent over FPS, resolution and grade levels.

Generative model (one pymdp ``Agent``, batch 1, one-step policies):

- hidden-state factors: the quality rank of FPS, resolution and grade (0 = lowest);
- actions: down / keep / up per factor (27 joint actions); ``B`` moves a rank by one,
  clamped at the ends;
- observations: each factor's rank (identity ``A``: the agent knows what it runs) and each
  SLO's state (OK / WARNING / CRITICAL) with an ``A`` that depends on all three factors and is
  learnt per setting (:class:`SloLikelihood`, rebuilt into the agent before every decision);
- preferences ``C``: every SLO far above quality — a CRITICAL costs ten times the whole
  quality range, a WARNING about one level of quality — and quality linear in each rank;
- habit ``E``: any change costs a little prior probability, so that near-ties keep the
  current setting (no oscillation on a steady load); moving two parameters at once costs no
  more than one, so a sideways move (fps down, grade up) is as easy as a single step. A
  parameter the operator pins gets prior 0 for every policy that would move it. The metrics
  lag the setting (a queue fills, and drains, over seconds), so for ``settle`` decisions after
  a step up every policy that raises anything gets prior 0, and after a step down every policy
  but "keep": the agent sees what one step did before it takes another. Without it, on the
  real pipeline, an optimistic agent climbed from a third of the FPS to full FPS in three
  seconds, then stepped down once a second while the backlog drained, far below what the
  machine could carry. And a policy whose setting would need more of the machine than
  ``max_utilisation`` (utilisation now x the relative work of the new setting over the
  current one) gets prior 0, and above ``shed_utilisation`` so does "keep", so the agent
  steps down: the SLO states only show an overload once it has happened, the utilisation
  shows it coming, and the VLM batcher, on the same cores, needs the headroom. Without it,
  on the real pipeline, the agent stepped the grade up at a CPU use of 98 % with every SLO
  OK, and frame latency went to 4 s; and it sat at 95 % CPU, where each verdict waited
  1–2 s for the VLM.

Policy inference is pymdp's (``infer_states`` then ``infer_policies`` and a deterministic
``sample_action``), jitted and run once when the first controller of a model is built, so
the first real decision is as fast as the rest. Learning is not pymdp's ``infer_parameters``
(see :mod:`.likelihood` for why): the counts are kept outside and the agent's ``A`` is
swapped for their expected value inside the jitted call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from pymdp.agent import Agent  # type: ignore[import-untyped]

from edgeapp.engine.api import Slo, SloState, StreamParameters
from edgeapp.engine.control.controllers import FIELDS, ControllerKind, Decision
from edgeapp.engine.control.likelihood import SloLikelihood
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import SloStates

# A decision is a few hundred microseconds of work: dispatching it asynchronously only adds a
# thread hand-off, which on a busy machine is what makes the slow tail (p99 x3 measured).
jax.config.update("jax_cpu_enable_async_dispatch", False)

_NAMES = ("fps", "resolution", "grade")
LAGS = {Slo.QUEUE: 3, Slo.MEMORY: 3, Slo.FRAME_LATENCY: 3, Slo.ORDER_LATENCY: 10}


def _transitions(n: int) -> np.ndarray:
    """``B[next, now, action]`` of one factor: action 0 lowers, 1 keeps, 2 raises the rank."""
    b = np.zeros((n, n, 3), dtype=np.float32)
    for s in range(n):
        for action in range(3):
            b[min(max(s + action - 1, 0), n - 1), s, action] = 1.0
    return b


@dataclass(frozen=True)
class Preferences:
    """The agent's prior preferences (log units) and its habit against change."""

    quality_weight: float = 3.0  # utility of the whole quality range (0 -> 1)
    warning_cost: float = 3.0  # a certain WARNING: about one level of quality
    critical_cost: float = 30.0  # a certain CRITICAL: ten times the whole quality range
    change_cost: float = 0.1  # log prior against changing anything


Inference = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                     tuple[jax.Array, jax.Array]]


@functools.lru_cache(maxsize=4)
def policy_inference(shape: tuple[int, int, int],
                     prefs: Preferences) -> tuple[Inference, np.ndarray]:
    """pymdp's state and policy inference for this model, jitted and run once (cached, so a
    second controller of the same model starts at once), and each policy's step per factor
    (-1 / 0 / +1, ``[policy, factor]``) for the mask of allowed policies it takes."""
    n_slo = len(Slo)
    levels = [jnp.eye(n, dtype=jnp.float32) for n in shape]
    uniform = [jnp.full((len(SloState), *shape), 1 / len(SloState)) for _ in range(n_slo)]
    slo_pref = jnp.array([0.0, -prefs.warning_cost, -prefs.critical_cost], dtype=jnp.float32)
    C = [jnp.linspace(0.0, prefs.quality_weight / 3, n, dtype=jnp.float32) for n in shape]
    agent = Agent(A=levels + uniform, B=[jnp.asarray(_transitions(n)) for n in shape],
                  C=C + [slo_pref] * n_slo, A_dependencies=[[0], [1], [2]] + [[0, 1, 2]] * n_slo,
                  num_controls=[3, 3, 3], policy_len=1, use_states_info_gain=False,
                  action_selection="deterministic", num_iter=1)
    moves = np.asarray(agent.policies.policy_arr)[:, 0, :] != 1  # [policy, factor]
    habit = jnp.asarray(np.exp(-prefs.change_cost * moves.any(axis=1)))

    @jax.jit
    def infer(a_slo: jax.Array, ranks: jax.Array, slo_obs: jax.Array,
              allowed: jax.Array) -> tuple[jax.Array, jax.Array]:
        prior = habit * allowed  # a policy not allowed now has prior probability 0
        model = eqx.tree_at(lambda a: (a.A, a.E), agent, (
            [a[None] for a in levels] + [a_slo[m][None] for m in range(n_slo)],
            (prior / prior.sum())[None]))
        obs = [ranks[f:f + 1] for f in range(3)] + [slo_obs[m:m + 1] for m in range(n_slo)]
        qs = model.infer_states(obs, model.D)
        q_pi, neg_efe = model.infer_policies(qs)
        return model.sample_action(q_pi)[0], neg_efe[0]

    # Compile and run once now: the first real decision must not wait for XLA.
    infer(np.stack(uniform), np.zeros(3, np.int32), np.zeros(n_slo, np.int32),
          np.ones(len(moves), bool))[0].block_until_ready()
    return infer, np.asarray(agent.policies.policy_arr)[:, 0, :] - 1


class AifController:
    """Active inference over the stream parameters; learns which settings keep the SLOs."""

    kind: ControllerKind = "aif"

    def __init__(self, space: ParameterSpace, *, prefs: Preferences | None = None,
                 likelihood: SloLikelihood | None = None, settle: int = 3,
                 max_utilisation: float = 0.85, shed_utilisation: float = 0.95) -> None:
        self.space = space
        self.settle = settle  # decisions a step up / down is left to show its effect
        self.max_utilisation = max_utilisation  # no step into a setting needing more
        self.shed_utilisation = shed_utilisation  # above it, only steps to less work
        self._work = space.compute_grid()
        self._top = np.asarray(space.shape) - 1
        self.likelihood = likelihood or SloLikelihood(space, len(Slo))
        # Decisions after a step down during which an SLO's bad state is the old setting's:
        # about how far back its metric looks (an order ending now had frames queued ~10 s ago).
        self.lags = [LAGS[slo] for slo in Slo]
        self._infer, self._steps = policy_inference(space.shape, prefs or Preferences())
        self._last: tuple[int, int, int] | None = None
        self._before: tuple[int, int, int] | None = None  # the dearer setting just left
        self._since_down = 0  # decisions since then
        self._since_up = settle  # decisions since the last step up
        self._since_cut = settle  # decisions since the last step to less work

    def decide(self, slo: SloStates, current: StreamParameters,
               pinned: frozenset[str] = frozenset(), *,
               utilisation: float | None = None, may_raise: bool = True) -> Decision:
        """Learn from the SLO states seen under ``current``, then infer the next parameters."""
        ranks = self.space.ranks(current)
        states = [slo.get(name) for name in Slo]  # None: not measured, no evidence
        self._learn(ranks, states)
        action, _ = self._infer(self.likelihood.expected(), np.asarray(ranks, np.int32),
                                np.asarray([s or SloState.OK for s in states], np.int32),
                                self._allowed(pinned, ranks, utilisation, may_raise))
        steps = [int(a) - 1 for a in np.asarray(action)]
        moved = self.space.step(current, steps)
        self._since_up += 1
        self._since_cut += 1
        if moved == current:
            return Decision(current, "keep")
        if any(a > b for a, b in zip(self.space.ranks(moved), ranks, strict=True)):
            self._since_up = 0
        if self.space.relative_compute(moved) < self.space.relative_compute(current):
            self._since_cut = 0
        words = [f"{name} {'up' if s > 0 else 'down'}"
                 for name, s, a, b in zip(_NAMES, steps, self.space.ranks(moved), ranks,
                                          strict=True) if a != b]
        return Decision(moved, "expected free energy: " + ", ".join(words))

    def _allowed(self, pinned: frozenset[str], ranks: tuple[int, int, int],
                 utilisation: float | None, may_raise: bool = True) -> np.ndarray:
        """Which policies may be chosen now: none that moves a pinned field; none whose
        setting needs more than ``max_utilisation`` of the machine, and above
        ``shed_utilisation`` only those to less work (the gap between the two keeps a bursty
        CPU reading from stepping it down and up again); while a step settles, or while a
        stream is away (``may_raise``), none that raises (after a step up) or moves at all
        (after a cut). If that leaves nothing, "keep"."""
        moves = self._steps != 0
        allowed = ~(moves & np.asarray([f in pinned for f in FIELDS])[None, :]).any(axis=1)
        if utilisation is not None:
            to = np.clip(np.asarray(ranks) + self._steps, 0, self._top)  # [policy, factor]
            more = self._work[to[:, 0], to[:, 1], to[:, 2]] / self._work[ranks]
            allowed &= (more <= 1.0) | (utilisation * more <= self.max_utilisation)
            if utilisation > self.shed_utilisation:
                allowed &= more < 1.0
        if self._since_up < self.settle or not may_raise:
            allowed &= ~(self._steps > 0).any(axis=1)
        if self._since_cut < self.settle:
            allowed &= ~moves.any(axis=1)
        if not allowed.any():
            allowed = ~moves.any(axis=1)
        return allowed

    def _learn(self, ranks: tuple[int, int, int], states: list[SloState | None]) -> None:
        """Count each SLO's state for the setting that caused it."""
        if self._last is not None and ranks != self._last:
            work = self.space.relative_compute
            cheaper = work(self.space.from_ranks(ranks)) < work(self.space.from_ranks(self._last))
            self._before = self._last if cheaper else None
            self._since_down = 0
        self._last = ranks
        self.likelihood.forget()
        # Right after a step down the queue still holds the dearer setting's backlog and the
        # orders ending now had frames queued under it: for as long as an SLO's metric lags,
        # its WARNING / CRITICAL is evidence about that setting, not this one.
        old = [s if self._before is not None and s and self._since_down < lag else None
               for s, lag in zip(states, self.lags, strict=True)]
        self._since_down += 1
        if self._before is not None and any(s is not None for s in old):
            self.likelihood.observe(self._before, old)
        self.likelihood.observe(ranks, [None if o is not None else s
                                        for s, o in zip(states, old, strict=True)])
