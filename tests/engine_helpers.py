"""Helpers for the engine tests: a small config on private sockets, an event log, the truth."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edgeapp import paths
from edgeapp.config import Config, config_from_dict
from edgeapp.engine.api import EngineEvent, Notification, OrderValidated, StationStatus
from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.sources.synthetic import OrderTruth, SyntheticScene

# Threads the engine and its parts start (all daemons, so conftest cannot see them).
ENGINE_THREADS = ("engine-", "station-", "vlm-", "producer", "collector")


def short_dir() -> Path:
    """A fresh folder with a short path (ipc:// socket paths are limited to ~100 bytes),
    removed when the test session ends."""
    path = Path(tempfile.mkdtemp(prefix="ea-", dir="/tmp"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def engine_config(root: Path, stations: list[dict[str, Any]], **sections: Any) -> Config:
    """A config for tests: ``stations``, one local worker, the static controller, the judge
    without its second look, sockets and data under ``root``; ``sections`` overrides."""
    data: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "stations": stations,
        "stream": {"start_fps_level": 0.33},
        "controller": {"kind": "static"},  # parameters hold unless a test moves them
        # the m model compiles in every engine otherwise; the second look is tested on the
        # judge itself (test_vlm_local.py) and end to end by the demo's tests
        "vlm": {"confirm_grade": "none"},
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock", "local_workers": 1},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return config_from_dict(data)


def three_grade_models(root: Path) -> Path:
    """A models folder with a model for each grade: the shipped LOW model under three cards
    (low / medium / high), so the grade path runs end to end whatever is installed."""
    (shipped,) = [d for d in paths.shipped_models_dir().iterdir()
                  if (d / "card.yaml").is_file()
                  and yaml.safe_load((d / "card.yaml").read_text())["grade"] == "low"]
    folder = root / "models"
    for grade in ("low", "medium", "high"):
        model = folder / f"demo-{grade}"
        model.mkdir(parents=True)
        card = {**yaml.safe_load((shipped / "card.yaml").read_text()),
                "name": f"demo-{grade}", "grade": grade}
        (model / "card.yaml").write_text(yaml.safe_dump(card))
        for part in ("metadata.yaml", f"{shipped.name}.xml", f"{shipped.name}.bin"):
            shutil.copy2(shipped / part, model / part)  # copies: the registry dedupes links
    return folder


class EventLog:
    """Every engine event, in order, with waiting helpers (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: EngineEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        """The events of one type so far."""
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def results(self, station: str | None = None) -> list[OrderResult]:
        """Verdicts so far (of one station, if given)."""
        return [e.result for e in self.of(OrderValidated)
                if station is None or e.result.station_id == station]

    def notes(self) -> list[str]:
        """Notification texts so far."""
        return [e.text for e in self.of(Notification)]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``condition()`` holds; fail after ``timeout`` s saying ``what``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                         f"events: {self.events[-12:]}")
                self._cond.wait(min(left, 0.2))


def truth_orders(seed: int, wrong_order_rate: float, count: int = 40) -> dict[str, OrderTruth]:
    """The first ``count`` orders the synthetic camera with ``seed`` packs, by order id."""
    scene = SyntheticScene(load_catalog(), seed=seed, wrong_order_rate=wrong_order_rate,
                           width=160, height=90)
    while len(scene.orders) < count:
        scene.skip()
    return {o.order_id: o for o in scene.orders}


def station_status(engine: Any, station: str) -> StationStatus:
    """One station's entry in ``engine.status()``."""
    (entry,) = [s for s in engine.status().stations if s.name == station]
    return entry


def current_order(engine: Any, station: str) -> str | None:
    """The order on ``station``'s counter now (None: none, or its ticket not read yet)."""
    return station_status(engine, station).current_order


def engine_threads() -> list[str]:
    """Engine threads still alive."""
    return [t.name for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(ENGINE_THREADS)]
