"""A seeded, fast simulator of the pipeline's load, to evaluate controllers on scenarios.

One step is one control interval (1 s). Per-frame costs are MEASURED on this machine
(``detector_costs.json``: CPU ms per frame of the shipped yolo11n model at each input size);
the MEDIUM / HIGH grades scale them by YOLO11 s / m GFLOPs over n (ultralytics' published
detection table at 640 px: n 6.5, s 21.5, m 68.0 — an approximation: it also scales the
pre- and post-processing, which do not grow with the model).

The model, with the reasons for each choice:

- Workers are boxes with a number of cores; one frame at a time per worker, spread over its
  cores (perfect scaling: optimistic), so service time is ``cost / cores-per-worker`` and the
  cluster's capacity ``sum(cores) * 1000 / cost`` frames per second.
- Demand is ``stations * source_fps * fps_level``; the detector's input is the resolution
  level times the model's 320 px, rounded down to a multiple of 32 as the detector does.
- The queue has two parts: a fluid backlog that grows at ``demand - capacity`` (bounded by
  the task queue's limit; the oldest frames are dropped beyond it), and a random-arrival
  queue that relaxes towards the M/M/c mean (Sakasegawa's approximation) with the M/M/1
  relaxation time ``1 / (mu (1 - sqrt(rho))^2)`` — so latency creeps up over seconds after a
  step up, as a real queue does, and WARNING shows before CRITICAL.
- Capacity wanders (AR(1), ~5 %), has rare short dips (another job on a worker) and loses
  20 % for one step after a grade change (workers compile the new model beside the old one).
- Order latency is the VLM's time plus the frame latency plus the backlog to drain, for the
  orders that ended during the step (the worst of them), ``None`` when none did: a window
  over past orders would report one slow order again and again.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from edgeapp.engine.api import StreamParameters
from edgeapp.engine.control.parameters import GRADE_GFLOPS, ParameterSpace
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.vision.grades import Grade

COSTS_FILE = Path(__file__).with_name("detector_costs.json")
MODEL_INPUT = 320  # the shipped models' training size: the detector's largest input


@dataclass(frozen=True)
class DetectorCosts:
    """CPU milliseconds per frame of the n model at each measured input size."""

    cpu_ms: dict[int, float]

    @classmethod
    def load(cls, path: Path = COSTS_FILE) -> DetectorCosts:
        """The measured figures shipped beside this module."""
        data = json.loads(path.read_text(encoding="utf-8"))["by_input_size"]
        return cls({int(size): row["edgeapp_cpu_ms_per_frame"] for size, row in data.items()})

    def input_size(self, scale: float) -> int:
        """The detector input for a resolution scale: ``320 * scale`` down to a multiple of 32."""
        size = max(32, int(MODEL_INPUT * scale) // 32 * 32)
        return min(self.cpu_ms, key=lambda s: abs(s - size))  # nearest measured size

    def frame_ms(self, scale: float, grade: Grade) -> float:
        """CPU ms per frame at a resolution scale and grade."""
        return self.cpu_ms[self.input_size(scale)] * GRADE_GFLOPS[grade] / GRADE_GFLOPS[Grade.LOW]


@dataclass(frozen=True)
class Phase:
    """From ``at_s`` on: how many stations stream and the cores of each worker."""

    at_s: int
    stations: int
    workers: tuple[int, ...]


@dataclass(frozen=True)
class Scenario:
    """A named run: its length and its phases."""

    name: str
    duration_s: int
    phases: tuple[Phase, ...]

    def phase(self, t: int) -> Phase:
        """The phase in force at second ``t``."""
        return [p for p in self.phases if p.at_s <= t][-1]

    @property
    def disturbances(self) -> tuple[int, ...]:
        """Seconds at which demand rises or capacity falls."""
        return tuple(b.at_s for a, b in zip(self.phases, self.phases[1:], strict=False)
                     if b.stations > a.stations or sum(b.workers) < sum(a.workers))


# Four stations (the demo) on a 4-core box, a 3-core one and two 2-core ones. Full quality
# needs ~96 % of that, which a queue cannot sustain: the controller has to find the best
# setting that fits.
_CLUSTER = (4, 3, 2, 2)
SCENARIOS = {
    "steady": Scenario("steady", 900, (Phase(0, 4, _CLUSTER),)),
    "capacity_drop": Scenario("capacity_drop", 900, (
        Phase(0, 4, _CLUSTER), Phase(300, 4, _CLUSTER[1:]), Phase(600, 4, _CLUSTER))),
    "demand_rise": Scenario("demand_rise", 900, (
        Phase(0, 4, _CLUSTER), Phase(300, 6, _CLUSTER), Phase(600, 8, _CLUSTER))),
}


class Simulator:
    """Steps the scenario one second at a time under the parameters a controller chose."""

    def __init__(self, scenario: Scenario, space: ParameterSpace, *, seed: int = 0,
                 costs: DetectorCosts | None = None, source_fps: float = 15.0,
                 queue_limit: int = 64) -> None:
        self.scenario = scenario
        self.space = space
        self.costs = costs or DetectorCosts.load()
        self.source_fps = source_fps
        self.queue_limit = queue_limit
        self.t = 0
        self.utilisation = 0.0  # demand / capacity of the last step, for plots
        self._rng = random.Random(seed)
        self._backlog = 0.0
        self._waiting = 0.0
        self._drift = 1.0
        self._dip_left = 0
        self._dip = 1.0
        self._grade: Grade | None = None
        self._next_order: dict[int, float] = {}  # station -> when its next order ends

    def step(self, params: StreamParameters) -> MetricsSample:
        """Run one second under ``params``; return what the metrics would show."""
        rng, phase = self._rng, self.scenario.phase(self.t)
        demand = phase.stations * self.source_fps * self.space.fps_fraction(params)
        cost = self.costs.frame_ms(self.space.resolution_scale(params), params.grade)
        capacity = sum(phase.workers) * 1000.0 / cost * self._capacity_factor(params.grade)
        servers = len(phase.workers)
        service_ms = cost * servers / sum(phase.workers)
        rho = demand / capacity
        self.utilisation = rho
        self._backlog = min(max(self._backlog + demand - capacity, 0.0), self.queue_limit)
        r = min(rho, 0.98)  # past saturation the fluid backlog carries the excess
        mean_waiting = r ** math.sqrt(2 * (servers + 1)) / (1 - r)
        relax = 1.0 / (capacity * (1 - math.sqrt(r)) ** 2)
        self._waiting += (mean_waiting - self._waiting) * (1 - math.exp(-1.0 / relax))
        queue = min(self._backlog + self._waiting, float(self.queue_limit))
        # p95 of an exponential-like wait is ~3x its mean (ln 20); Little: wait = L / lambda.
        wait_s = self._backlog / capacity + 3 * self._waiting / max(demand, 1e-9)
        latency_ms = (1.25 * service_ms + 1000 * wait_s) * math.exp(rng.gauss(0, 0.08))
        memory = (38 + 3.5 * phase.stations + 0.6 * (int(params.grade) + 1)
                  + queue * 2.7 / 240 + rng.gauss(0, 0.3))  # a 720p frame is 2.7 MB of 24 GB
        sample = MetricsSample(
            queue_size=round(queue), fps=demand, memory_percent=memory,
            frame_latency_p95_ms=latency_ms,
            order_latency_s=self._order_latency(phase.stations, latency_ms, wait_s),
            utilisation=rho)
        self.t += 1
        return sample

    def _capacity_factor(self, grade: Grade) -> float:
        """Drift, rare dips, and the reload after a grade change, as a factor on capacity."""
        rng = self._rng
        self._drift = 1 + 0.9 * (self._drift - 1) + rng.gauss(0, 0.02)
        if self._dip_left == 0 and rng.random() < 1 / 300:
            self._dip_left, self._dip = rng.randint(1, 4), rng.uniform(0.4, 0.7)
        dip = self._dip if self._dip_left else 1.0
        self._dip_left = max(0, self._dip_left - 1)
        reload = 0.8 if self._grade is not None and grade != self._grade else 1.0
        self._grade = grade
        return self._drift * dip * reload

    def _order_latency(self, stations: int, latency_ms: float, wait_s: float) -> float | None:
        """The worst verdict latency of the orders that ended this step; None if none did."""
        rng, worst = self._rng, None
        for k in range(stations):
            if self.t >= self._next_order.setdefault(k, self.t + rng.uniform(5, 25)):
                vlm_s = 1.2 * math.exp(rng.gauss(0, 0.25))
                worst = max(worst or 0.0, vlm_s + latency_ms / 1000 + wait_s)
                self._next_order[k] = self.t + rng.uniform(15, 30)
        return worst
