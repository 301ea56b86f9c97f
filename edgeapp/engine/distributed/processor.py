"""What a worker runs on its tasks: the ``Processor`` protocol, a no-op one, and the factory hook.

The worker builds its processor from the Producer's REGISTRATION_CONFIRMATION through a
*factory* (``Callable[[Mapping], Processor]``), so the OpenVINO detector plugs in without the
transport knowing about it. All processor calls happen on the worker's one processing thread.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgeapp.errors import ConfigError

#: An empty detections array: ``(0, 6)`` float32 ``x1, y1, x2, y2, score, class``.
EMPTY_DETECTIONS = np.zeros((0, 6), dtype=np.float32)


@runtime_checkable
class Processor(Protocol):
    """Turns a batch of images into one detections array per image."""

    def load(self, grade: int, loading_mode: int) -> None:
        """Prepare grade ``grade`` (0 LOW, 1 MEDIUM, 2 HIGH); EAGER mode may load all grades."""

    def set_grade(self, grade: int) -> None:
        """Switch to ``grade``; called before the next task after a CHANGE."""

    def process_batch(self, images: list[np.ndarray], metas: list[dict]) -> list[np.ndarray]:
        """One float32 ``(N, 6)`` array per image, in the same order."""
        ...

    def close(self) -> None:
        """Free what ``load`` took."""


ProcessorFactory = Callable[[Mapping[str, Any]], Processor]


class NoopProcessor:
    """Finds nothing, optionally after ``delay_s`` per batch (transport benchmark and tests)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.grade: int | None = None
        self.loading_mode: int | None = None

    def load(self, grade: int, loading_mode: int) -> None:
        """Remember the grade; there is nothing to load."""
        self.grade, self.loading_mode = grade, loading_mode

    def set_grade(self, grade: int) -> None:
        """Remember the grade."""
        self.grade = grade

    def process_batch(self, images: list[np.ndarray], metas: list[dict]) -> list[np.ndarray]:
        """An empty detections array per image."""
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        return [EMPTY_DETECTIONS for _ in images]

    def close(self) -> None:
        """Nothing to free."""


def noop_factory(delay_s: float = 0.0) -> ProcessorFactory:
    """A factory that always builds a :class:`NoopProcessor`."""
    return lambda _confirmation: NoopProcessor(delay_s)


#: Default processors per ``work_type``, as ``module:callable`` taking the confirmation.
#: The detector's module provides ``make_processor(confirmation) -> Processor``.
WORK_TYPE_PROCESSORS: dict[str, str] = {
    "NONE": "edgeapp.engine.distributed.processor:make_noop",
    "YOLO_DETECTION": "edgeapp.engine.vision.processor:make_processor",
    "YOLO_OBB": "edgeapp.engine.vision.processor:make_processor",
}


def make_noop(confirmation: Mapping[str, Any]) -> Processor:
    """Factory entry for ``work_type: NONE``."""
    return NoopProcessor()


def load_factory(spec: str) -> ProcessorFactory:
    """Resolve ``"noop"``, ``"auto"`` (by work type) or ``"module:callable"`` to a factory."""
    if spec == "noop":
        return noop_factory()
    if spec == "auto":
        return _auto_factory
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(f"processor: expected 'noop', 'auto' or 'module:callable', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"processor: cannot load {spec!r}: {exc}") from exc


def _auto_factory(confirmation: Mapping[str, Any]) -> Processor:
    """Pick the processor from the confirmation's ``work_type``."""
    work_type = str(confirmation.get("work_type", "NONE"))
    spec = WORK_TYPE_PROCESSORS.get(work_type)
    if spec is None:
        raise ConfigError(f"work_type: unknown {work_type!r}")
    return load_factory(spec)(confirmation)
