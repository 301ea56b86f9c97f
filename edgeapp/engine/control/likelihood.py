"""What the AIF agent learns: per setting, which state each SLO is in (Dirichlet counts).

The counts are the Dirichlet parameters of the agent's SLO likelihood ``P(state | setting)``
(pymdp's ``pA`` for the SLO modalities); their expected value is the agent's ``A``. They are
kept here rather than by pymdp's ``infer_parameters``, which only adds counts, because the
load on a pick-up counter's hardware moves: workers leave, stations are added. So:

- **Forgetting.** Every step all counts decay towards the prior (``memory``), so what was
  learnt about a setting goes stale and the agent looks at it again: that is what lets it
  step quality back up once the load has fallen, since at a setting that is OK nothing in
  the SLO states says the load fell. ``memory`` sets how often it looks: measured on the
  simulator, 0.99 (~100 s) costs about one change a minute on a steady load, 0.995 half
  that at a lower quality, 0.98 more quality and changes. Where evidence arrives the old
  evidence is also shrunk (``recent``), so a change in the load shows within a few steps.
- **Monotonicity.** More work never makes an SLO better, so a state seen at one setting is
  evidence for the settings it bounds: OK for the cheaper ones, WARNING / CRITICAL for the
  dearer ones. "Cheaper" comes from :meth:`ParameterSpace.relative_compute`, a rough model,
  so each bound is weighted by the chance that the order holds (log-normal error ``sigma``).
"""

from __future__ import annotations

import math

import numpy as np

from edgeapp.engine.api import SloState
from edgeapp.engine.control.parameters import ParameterSpace


class SloLikelihood:
    """Dirichlet counts ``[slo, state, fps, resolution, grade]`` over quality ranks."""

    def __init__(self, space: ParameterSpace, slos: int, *,
                 prior: tuple[float, float, float] = (1.0, 0.002, 0.0005),
                 memory: float = 0.99, recent: float = 0.8, sigma: float = 0.3) -> None:
        self.shape = space.shape
        self.memory = memory
        self.recent = recent
        # The prior is optimistic on purpose: an untried setting is probably fine, so the agent
        # starts from the best quality and tries a dearer setting once its failures are stale.
        column = np.asarray(prior, dtype=np.float64).reshape(1, len(SloState), 1)
        size = int(np.prod(self.shape))
        self._prior = np.broadcast_to(column, (slos, len(SloState), size)).copy()
        self._counts = self._prior.copy()
        log_cost = np.log(space.compute_grid().ravel())
        # cheaper[i, j]: the chance that setting j needs no more work than setting i.
        gap = (log_cost[:, None] - log_cost[None, :]) / (sigma * math.sqrt(2))
        cheaper = 0.5 * (1 + np.vectorize(math.erf)(gap))
        np.fill_diagonal(cheaper, 0.0)
        self._cheaper = cheaper  # OK at i -> OK at these
        self._dearer = cheaper.T  # WARNING / CRITICAL at i -> the same at these

    def index(self, ranks: tuple[int, int, int]) -> int:
        """The flat index of a setting given as quality ranks."""
        return int(np.ravel_multi_index(ranks, self.shape))

    def forget(self) -> None:
        """One step of forgetting: every count moves ``1 - memory`` of the way to the prior."""
        self._counts -= (1.0 - self.memory) * (self._counts - self._prior)

    def observe(self, ranks: tuple[int, int, int], states: list[SloState | None]) -> None:
        """Count one observation of each SLO's state under the setting ``ranks`` (skip None)."""
        i = self.index(ranks)
        for m, state in enumerate(states):
            if state is None:
                continue
            here = self._counts[m, :, i]
            here -= (1.0 - self.recent) * (here - self._prior[m, :, i])
            here[state] += 1.0
            bound = self._cheaper if state == SloState.OK else self._dearer
            self._counts[m, state, :] += bound[i]

    @property
    def counts(self) -> np.ndarray:
        """The Dirichlet counts, shaped ``[slo, state, fps, resolution, grade]`` (a copy)."""
        return self._counts.reshape(self._counts.shape[:2] + self.shape).copy()

    def expected(self) -> np.ndarray:
        """The expected likelihood ``P(state | setting)``, shaped like ``counts``."""
        a = self._counts / self._counts.sum(axis=1, keepdims=True)
        return a.reshape(a.shape[:2] + self.shape).astype(np.float32)
