"""``edgeapp bench pipeline``: a short real run through local detector workers, and bad input."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest

from edgeapp.cli import main
from edgeapp.engine.bench.pipeline import bench_pipeline, default_tuning
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vision.models import installed_models, resolve_grades
from edgeapp.engine.vision.processor import make_processor
from edgeapp.errors import InputError, UsageError

KEYS = {"pipeline_fps", "openvino_benchmark_fps", "ratio", "p95_frame_latency_ms",
        "p50_frame_latency_ms", "model", "grade", "fallback", "input", "frame", "workers",
        "batch_size", "prefetch", "threads_per_worker", "streams_per_worker", "cpu_pinning",
        "window", "frames_per_round", "rounds", "frames_delivered", "detections_per_frame",
        "pipeline_cpu_ms_per_frame", "openvino_benchmark_cpu_ms_per_frame", "cpu_ratio",
        "per_round"}


def test_every_frame_comes_back_once_in_order_with_detections_and_figures() -> None:
    # Given: one real worker process at the HIGH grade (the shipped m model)
    delivered: dict[str, list[int]] = defaultdict(list)
    found: list[np.ndarray] = []
    lock = threading.Lock()

    def seen(result) -> None:  # on the Collector thread
        with lock:
            delivered[result.stream_key].append(result.seq)
            found.append(result.detections)

    grades = resolve_grades(installed_models())

    # When: a short run (few frames, one round, benchmark_app for a second)
    out = bench_pipeline(1, "m", frames=12, rounds=1, seconds=1, on_result=seen)

    # Then: every frame of every stream came back exactly once, in order
    assert delivered["round-0"] == list(range(12))
    for key, seqs in delivered.items():
        assert seqs == list(range(len(seqs))), f"stream {key} came back as {seqs}"
    assert out["frames_delivered"] == 12
    # the real detector ran on them and found the demo's items
    assert all(d.dtype == np.float32 and d.ndim == 2 and d.shape[1] == 6 for d in found)
    assert sum(len(d) for d in found) > 0 and out["detections_per_frame"] > 0
    # the figures are there, JSON-ready, and say which model really ran
    assert KEYS <= set(out), f"missing {KEYS - set(out)}"
    json.dumps(out)
    assert out["model"] == grades.models[Grade.HIGH].name == "yolo11m-demo"
    assert out["fallback"] is None, "m is shipped: HIGH is served by its own model"
    assert out["input"] == grades.models[Grade.HIGH].input_size  # default: the model's own
    assert out["workers"] == 1 and out["rounds"] == 1
    assert out["ratio"] > 0
    # the fps figures are rounded to 0.1, the ratio is not: a few fps of the m model on a
    # busy machine leave the rounding a share of a few percent
    pipe, app = out["pipeline_fps"], out["openvino_benchmark_fps"]
    assert out["ratio"] == pytest.approx(pipe / app, rel=0.05 / pipe + 0.05 / app + 0.001)
    assert out["p95_frame_latency_ms"] >= out["p50_frame_latency_ms"] > 0


@pytest.mark.parametrize("kwargs, argv, error, words", [
    ({"workers": 0}, ["--workers", "0"], UsageError, "--workers"),
    ({"grade": "huge"}, ["--grade", "huge"], InputError, "grade"),
])
def test_bad_options_are_one_clear_line(kwargs, argv, error, words, capsys) -> None:
    with pytest.raises(error, match=words):
        bench_pipeline(**kwargs)
    code = main(["bench", "pipeline", "--json", *argv])
    err = capsys.readouterr().err.strip()
    assert code == error.exit_code
    assert err.startswith("edgeapp: ") and words in err and "\n" not in err


def test_default_tuning_gives_each_worker_its_share_of_the_cores() -> None:
    alone = default_tuning(1, cores=2)
    shared = default_tuning(cores=2)
    assert (alone.threads, alone.pinning) == (2, True)  # OpenVINO's own choice, as benchmark_app
    assert (shared.workers, shared.threads, shared.pinning) == (2, 1, False)
    assert shared.window >= shared.workers * shared.batch_size  # every worker can be busy
    assert default_tuning(2, cores=2, batch_size=7).batch_size == 7


def test_the_producer_sizes_the_workers_openvino_runtime() -> None:
    confirmation = {"work_type": "YOLO_DETECTION", "work_load": 0, "loading_mode": 0,
                    **default_tuning(2, cores=2).confirmation()}
    proc = make_processor(confirmation)
    proc.load(0, 0)
    try:
        assert proc.detector is not None
        compiled = proc.detector._current().variant((192, 320)).compiled
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert compiled.get_property("NUM_STREAMS") == 1
        assert compiled.get_property("ENABLE_CPU_PINNING") is False
    finally:
        proc.close()
    with pytest.raises(InputError, match="inference_threads"):
        make_processor({"inference_threads": 0})
    with pytest.raises(InputError, match="cpu_pinning"):
        make_processor({"cpu_pinning": "yes"})
