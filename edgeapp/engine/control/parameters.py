"""Stream parameters as levels: FPS, resolution and model grade, and the space they move in.

Levels are indices into the config's lists, which run highest first (``fps_levels[0]`` is the
source FPS), so level 0 is the best quality; the grade is a :class:`Grade` (LOW / MEDIUM /
HIGH). A controller moves one level per parameter per decision at most.

The space holds only the grades that have a model of their own: where a grade would be served
by another grade's model (only YOLO11 n installed, say), moving to it changes nothing but the
label, so a controller must neither pay for it nor count it as quality.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgeapp.config.schema import StreamConfig
from edgeapp.engine.api import StreamParameters
from edgeapp.engine.vision.grades import Grade

#: YOLO11 n / s / m GFLOPs at 640 px (docs.ultralytics.com/models/yolo11, detection table).
GRADE_GFLOPS = {Grade.LOW: 6.5, Grade.MEDIUM: 21.5, Grade.HIGH: 68.0}


@dataclass(frozen=True)
class ParameterSpace:
    """The FPS and resolution levels of the config, and the grades that have a model."""

    fps_levels: tuple[float, ...]
    resolution_levels: tuple[float, ...]
    grades: tuple[Grade, ...] = tuple(Grade)  # ascending, at least one

    def __post_init__(self) -> None:
        if not self.grades:
            raise ValueError("a parameter space needs at least one grade")
        object.__setattr__(self, "grades", tuple(sorted(set(self.grades))))

    @classmethod
    def from_config(cls, config: StreamConfig,
                    grades: tuple[Grade, ...] = tuple(Grade)) -> ParameterSpace:
        """The space of ``config``'s levels over ``grades`` (default: all three)."""
        return cls(tuple(config.fps_levels), tuple(config.resolution_levels), grades)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of levels of FPS, resolution and grade."""
        return len(self.fps_levels), len(self.resolution_levels), len(self.grades)

    def nearest_grade(self, grade: Grade) -> Grade:
        """The grade of this space that serves ``grade`` (the lower on a tie, as the models'
        own fallback does)."""
        return min(self.grades, key=lambda g: (abs(g - grade), g))

    def highest(self) -> StreamParameters:
        """Source FPS, source resolution, the highest grade."""
        return StreamParameters(0, 0, self.grades[-1])

    def lowest(self) -> StreamParameters:
        """The lowest FPS and resolution levels and the lowest grade."""
        return StreamParameters(len(self.fps_levels) - 1, len(self.resolution_levels) - 1,
                                self.grades[0])

    def initial(self, config: StreamConfig) -> StreamParameters:
        """Full FPS and resolution at the config's starting grade."""
        return replace(self.highest(), grade=self.nearest_grade(Grade.parse(config.grade)))

    def starting(self, config: StreamConfig) -> StreamParameters:
        """Where the Engine starts: the FPS level nearest ``config.start_fps_level``, full
        resolution, the config's grade."""
        fps = min(range(len(self.fps_levels)),
                  key=lambda i: abs(self.fps_levels[i] - config.start_fps_level))
        return StreamParameters(fps, 0, self.nearest_grade(Grade.parse(config.grade)))

    def ranks(self, params: StreamParameters) -> tuple[int, int, int]:
        """Quality rank of each parameter, 0 = lowest (the AIF agent's hidden-state indices)."""
        return (len(self.fps_levels) - 1 - params.fps_level,
                len(self.resolution_levels) - 1 - params.resolution_level,
                self.grades.index(self.nearest_grade(params.grade)))

    def from_ranks(self, ranks: Sequence[int]) -> StreamParameters:
        """The parameters of quality ranks ``(fps, resolution, grade)``, clamped into range."""
        nf, nr, ng = self.shape
        f, r, g = (min(max(int(x), 0), n - 1) for x, n in zip(ranks, (nf, nr, ng), strict=True))
        return StreamParameters(nf - 1 - f, nr - 1 - r, self.grades[g])

    def step(self, params: StreamParameters, steps: Sequence[int]) -> StreamParameters:
        """``params`` moved by one step ``(fps, resolution, grade)`` each, clamped at the ends."""
        return self.from_ranks([x + d for x, d in zip(self.ranks(params), steps, strict=True)])

    def clamp(self, params: StreamParameters) -> StreamParameters:
        """``params`` with every level inside this space."""
        return self.from_ranks(self.ranks(params))

    def quality(self, params: StreamParameters) -> float:
        """Mean of the three levels normalised to 0 (lowest) .. 1 (highest)."""
        ranks = self.ranks(params)
        return sum(x / (n - 1) if n > 1 else 1.0
                   for x, n in zip(ranks, self.shape, strict=True)) / 3

    def fps_fraction(self, params: StreamParameters) -> float:
        """The FPS level as a fraction of the source FPS."""
        return self.fps_levels[params.fps_level]

    def resolution_scale(self, params: StreamParameters) -> float:
        """The resolution level as a scale of the source size."""
        return self.resolution_levels[params.resolution_level]

    def relative_compute(self, params: StreamParameters) -> float:
        """Detector work per source frame relative to the n model at full size (a rough model:
        frames x pixels x model GFLOPs, blind to fixed per-frame costs)."""
        return (self.fps_fraction(params) * self.resolution_scale(params) ** 2
                * GRADE_GFLOPS[params.grade] / GRADE_GFLOPS[Grade.LOW])

    def compute_grid(self) -> np.ndarray:
        """``relative_compute`` of every setting, indexed by quality ranks (``shape``)."""
        return np.array([self.relative_compute(p) for p in self.all()]).reshape(self.shape)

    def all(self) -> Iterator[StreamParameters]:
        """Every setting of the space."""
        nf, nr, ng = self.shape
        for f, r, g in itertools.product(range(nf), range(nr), range(ng)):
            yield self.from_ranks((f, r, g))
