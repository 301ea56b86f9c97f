"""Benchmark scenarios: how many stations, how long, which controller, what is pinned.

A scenario runs the synthetic order-station camera (the only source whose truth is known, so
verdict accuracy can be measured) on ``stations`` stations, in a fresh Engine on private ipc
sockets and a scratch data folder (:func:`scenario_config`). Everything not named here is
taken from the config the benchmark was given (models, VLM, SLOs, the camera's size and rate).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from edgeapp.config import Config, StationConfig
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import UsageError

STANDARD_STATIONS = (1, 2, 4, 6, 8)
CONTROLLER_KINDS = ("aif", "heuristic", "static")
VLM_BACKENDS = ("local", "openai")


@dataclass(frozen=True)
class FixedParameters:
    """Levels the operator would pin (None: the controller moves that one)."""

    fps_level: int | None = None
    resolution_level: int | None = None
    grade: str | None = None

    def __post_init__(self) -> None:
        if self.grade is not None:
            object.__setattr__(self, "grade", Grade.parse(self.grade).name.lower())

    @property
    def any(self) -> bool:
        """True when at least one parameter is pinned."""
        return any(v is not None for v in dataclasses.astuple(self))

    def label(self) -> str:
        """``fps0-res1-low``: the pinned levels, ``*`` where the controller decides."""
        def part(value: object) -> str:
            return "*" if value is None else str(value)
        return f"fps{part(self.fps_level)}-res{part(self.resolution_level)}-{part(self.grade)}"


NOTHING_FIXED = FixedParameters()


@dataclass(frozen=True)
class Scenario:
    """One benchmark run of the pipeline."""

    name: str
    stations: int
    duration_s: float = 60.0
    controller: str = "aif"              # aif / heuristic / static
    grade: str | None = None             # the grade the streams start at; None: the config's
    fixed: FixedParameters = NOTHING_FIXED  # pinned for the whole run
    vlm_backend: str | None = None       # local / openai; None: the config's
    local_workers: int | None = None     # None: the config's

    def __post_init__(self) -> None:
        if self.stations < 1:
            raise UsageError(f"scenario {self.name}: stations must be at least 1, "
                             f"got {self.stations}")
        if not self.duration_s > 0:
            raise UsageError(f"scenario {self.name}: duration must be > 0 s, "
                             f"got {self.duration_s}")
        if self.controller not in CONTROLLER_KINDS:
            raise UsageError(f"scenario {self.name}: controller must be one of "
                             f"{', '.join(CONTROLLER_KINDS)}, got {self.controller!r}")
        if self.vlm_backend is not None and self.vlm_backend not in VLM_BACKENDS:
            raise UsageError(f"scenario {self.name}: VLM backend must be one of "
                             f"{', '.join(VLM_BACKENDS)}, got {self.vlm_backend!r}")
        if self.grade is not None:
            try:
                object.__setattr__(self, "grade", Grade.parse(self.grade).name.lower())
            except ValueError as exc:
                raise UsageError(f"scenario {self.name}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """The inverse of :meth:`to_dict`."""
        fixed = FixedParameters(**(data.get("fixed") or {}))
        return cls(**{**data, "fixed": fixed})


def standard_set(duration_s: float = 60.0, **options: Any) -> list[Scenario]:
    """The seed's standard set: 1, 2, 4, 6 and 8 stations, ``duration_s`` each."""
    return [Scenario(f"scale_{n}_stations", n, duration_s, **options)
            for n in STANDARD_STATIONS]


def parse_stations(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; a clear ``UsageError`` otherwise."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UsageError(f"--stations: expected station counts >= 1 separated by commas "
                         f"(e.g. 1,2,4), got {text!r}")
    return counts


def bench_stations(base: Config, count: int) -> tuple[StationConfig, ...]:
    """``count`` synthetic stations like the config's first synthetic one (or the demo's),
    named ``station-1``… with seeds 0, 1, …: every scenario sees the same orders."""
    template = next((s for s in base.stations if s.source == "synthetic"),
                    StationConfig(name="station-1"))
    return tuple(dataclasses.replace(template, name=f"station-{i + 1}", seed=i, loop=False)
                 for i in range(count))


def scenario_config(base: Config, scenario: Scenario, root: Path) -> Config:
    """``base`` for one scenario: its stations, controller, grade and VLM backend, on ipc
    sockets and a data folder under ``root`` (keep it short: ipc paths are ~100 bytes), no
    autoscaling (the scenario fixes the station count). The sockets are local files, so no
    CURVE keys: the keys folder is the scratch one, empty."""
    # The scenario's strings were checked against these literals in __post_init__.
    stream = base.stream if scenario.grade is None else dataclasses.replace(
        base.stream, grade=cast(Any, scenario.grade))
    vlm = base.vlm if scenario.vlm_backend is None else dataclasses.replace(
        base.vlm, backend=cast(Any, scenario.vlm_backend))
    distributed = dataclasses.replace(
        base.distributed, producer_bind=f"ipc://{root}/p.sock",
        collector_bind=f"ipc://{root}/c.sock", keys_dir=root / "keys",
        local_workers=base.distributed.local_workers if scenario.local_workers is None
        else scenario.local_workers)
    # Pinned parameters hold only under the static controller: another would learn from,
    # and be judged on, seconds it did not decide.
    kind = "static" if scenario.fixed.any else scenario.controller
    return dataclasses.replace(
        base, stations=bench_stations(base, scenario.stations), data_dir=root / "data",
        stream=stream, vlm=vlm, distributed=distributed,
        controller=dataclasses.replace(base.controller, kind=cast(Any, kind)),
        scaling=dataclasses.replace(base.scaling, enabled=False),
        queue_backend="multiprocessing")
