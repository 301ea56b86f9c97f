"""The shipped s and m models through a grade switch in a running Engine.

The engine's control tests copy the n model under all three grade cards (cheap, and enough
for the controller's direction); here the shipped models themselves serve MEDIUM and HIGH,
so a switch must reach the worker, the worker must load the real s and m IRs, and the
detections the station gets must be those models' own.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import EventLog, engine_config, engine_threads, short_dir

from edgeapp import paths
from edgeapp.engine.engine import Engine
from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vision.grades import Grade
from edgeapp.training.verify import match


def _same_detections(got: np.ndarray, want: np.ndarray) -> bool:
    """The same boxes (IoU >= 0.99), classes and scores (within 0.01), box for box: what one
    model gives for one frame in two processes (n and s differ by more on a packed bag)."""
    if len(got) != len(want):
        return False
    pairs = match(got, want, same_class=True)
    return len(pairs) == len(want) and all(
        iou >= 0.99 and abs(float(got[i, 4]) - float(want[j, 4])) <= 0.01
        for i, j, iou in pairs)


def _worker_grades(engine: Engine) -> list[int]:
    return [int(w.grade) for w in engine.status().workers if w.grade is not None]


@pytest.mark.timeout(600)  # the worker compiles s and m on first use
def test_the_shipped_s_and_m_models_detect_for_the_station_after_a_grade_switch():
    # Given an engine on the shipped models (n, s and m), one station, full resolution only
    root = short_dir()
    # A 2 FPS camera: the station keeps its last 8 frames, so a detection may come back up to
    # 4 s late (a busy machine, a model compiling) and still find the frame it was made on
    config = engine_config(root, [{"name": "cam", "seed": 5, "fps": 2.0}],
                           stream={"resolution_levels": [1.0], "start_fps_level": 1.0},
                           vlm={"grade": "low"})
    assert config.models.path == paths.shipped_models_dir()
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    seen: dict[Grade, Any] = {}  # grade -> the engine's LatestFrame
    try:
        assert engine.space.grades == (Grade.LOW, Grade.MEDIUM, Grade.HIGH)
        for grade in (Grade.MEDIUM, Grade.HIGH):
            # When the operator switches the grade
            engine.set_override(grade=grade.name.lower())
            switched = time.time()

            # Then the worker runs at that grade, and frames captured after the switch come
            # back with detections
            log.wait(lambda g=grade: _worker_grades(engine) == [int(g)], 300,
                     f"the worker at {grade.name}")

            def detected_after_switch(g: Grade = grade, since: float = switched) -> bool:
                frame = engine.latest_frame("cam")
                if (frame is not None and frame.capture_ts > since and frame.detections
                        is not None and frame.detections_seq == frame.seq
                        and len(frame.detections) >= 3):  # a ticket and items
                    seen[g] = frame
                return g in seen

            log.wait(detected_after_switch, 240, f"a frame detected at {grade.name}")
    finally:
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()

    # ... and they are that model's own detections: the same as the shipped s (m) model
    # gives for the same frame here, and not what the n model gives
    with Detector(paths.shipped_models_dir(), grade=Grade.LOW, conf=config.models.conf_threshold,
                  iou=config.models.iou_threshold) as detector:  # as the workers run it
        for grade, frame in seen.items():
            n_model = detector.detect(frame.image)
            detector.set_grade(grade)
            own = detector.detect(frame.image)
            detector.set_grade(Grade.LOW)
            assert _same_detections(frame.detections, own), (grade, frame.detections, own)
            assert not _same_detections(frame.detections, n_model), \
                f"{grade.name}: the n model gives the same; this frame cannot tell them apart"
