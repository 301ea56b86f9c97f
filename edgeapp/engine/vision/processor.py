"""The detector as a worker's :class:`~edgeapp.engine.distributed.processor.Processor`.

The worker builds it from the Producer's REGISTRATION_CONFIRMATION (``make_processor``);
``work_load`` is the grade, ``loading_mode`` LAZY/EAGER. Each task's metadata may carry an
``input_size`` (the stream's resolution level); frames without one use the model's size.
``warm_sizes`` in the confirmation lists the input sizes the streams may ask for: every grade
is compiled at each of them in the background after the start, so a switch never waits for a
compile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vision.grades import Grade, LoadingMode
from edgeapp.errors import InputError

log = logging.getLogger(__name__)


class DetectorProcessor:
    """Runs each task batch through one :class:`Detector` (one per worker process)."""

    def __init__(self, models: str | Path | None = None, *,
                 warm_sizes: tuple[int | None, ...] = (), **detector_options: Any) -> None:
        self.models = models
        self.warm_sizes = warm_sizes
        self.detector_options = detector_options
        self.detector: Detector | None = None

    def load(self, grade: int, loading_mode: int) -> None:
        """Open the models and compile ``grade`` (EAGER: every grade) before the first task;
        then every grade at ``warm_sizes``, in the background."""
        self.close()
        self.detector = Detector(self.models, grade=Grade.parse(grade),
                                 loading_mode=LoadingMode.parse(loading_mode),
                                 **self.detector_options)
        self.detector.load()
        if self.warm_sizes:
            self.detector.warm(self.warm_sizes)

    def set_grade(self, grade: int) -> None:
        """Switch grade; batches already done are not affected, the next one uses it."""
        self._detector().set_grade(Grade.parse(grade))

    def process_batch(self, images: list[np.ndarray], metas: list[dict]) -> list[np.ndarray]:
        """One ``(N, 6)`` float32 detections array per image, in order."""
        if len(metas) != len(images):
            raise InputError(f"{len(images)} images but {len(metas)} metadata entries")
        sizes = [_input_size(meta) for meta in metas]
        return self._detector().detect_batch(images, sizes)

    def close(self) -> None:
        """Free the compiled models."""
        if self.detector is not None:
            self.detector.close()
            self.detector = None

    def _detector(self) -> Detector:
        if self.detector is None:
            raise InputError("the detector processor is not loaded: call load() first")
        return self.detector


def _input_size(meta: Mapping[str, Any]) -> int | None:
    size = meta.get("input_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise InputError(f"task {meta.get('id', '?')}: input_size must be an integer >= 32, "
                         f"got {size!r}")
    return size


#: Confirmation fields that size the worker's OpenVINO runtime, and the CPU property each sets.
#: Several workers on one machine each run the THROUGHPUT hint, which takes every core and pins
#: its threads to them: the Producer hands each worker its share instead.
OPENVINO_FIELDS = {"inference_threads": "INFERENCE_NUM_THREADS",
                   "inference_streams": "NUM_STREAMS", "cpu_pinning": "ENABLE_CPU_PINNING"}


def make_processor(confirmation: Mapping[str, Any]) -> DetectorProcessor:
    """Factory for the worker: optional ``models_path``, ``device``, ``conf_threshold``,
    ``iou_threshold``, ``warm_sizes`` and :data:`OPENVINO_FIELDS` in the confirmation override
    the defaults (shipped models, CPU, THROUGHPUT hint over every core, no warm-up)."""
    options: dict[str, Any] = {}
    if confirmation.get("device"):
        options["device"] = str(confirmation["device"])
    if confirmation.get("conf_threshold") is not None:
        options["conf"] = float(confirmation["conf_threshold"])
    if confirmation.get("iou_threshold") is not None:
        options["iou"] = float(confirmation["iou_threshold"])
    ov_config = {prop: _openvino_value(key, confirmation[key])
                 for key, prop in OPENVINO_FIELDS.items() if confirmation.get(key) is not None}
    if ov_config:
        options["ov_config"] = ov_config
    warm = confirmation.get("warm_sizes") or []
    if not isinstance(warm, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 32 for s in warm):
        raise InputError(f"warm_sizes: expected a list of integers >= 32, got {warm!r}")
    return DetectorProcessor(confirmation.get("models_path"), warm_sizes=tuple(warm), **options)


def _openvino_value(key: str, value: Any) -> int | bool:
    if key == "cpu_pinning":
        if not isinstance(value, bool):
            raise InputError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{key}: expected an integer >= 1, got {value!r}")
    return value
