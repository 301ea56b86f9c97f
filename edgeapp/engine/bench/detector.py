"""``edgeapp bench detector``: our detector's throughput against OpenVINO's own benchmark_app.

Ours: ``Detector.detect_batch`` on pre-rendered 1280x720 ``uint8`` synthetic frames, as a
worker gets them, so the figure includes the pre-processing (cv2 letterbox, then colour, scale
and layout in the graph) and the numpy post-processing (decode + NMS + un-letterbox).
Theirs: ``benchmark_app`` on the raw IR at the same input shape (``-hint throughput -shape
[1,3,H,W]``: the letterbox of the frame at the input size, 320x192 for 1280x720 at 320), which
feeds ready-made float tensors and does no post-processing: the ceiling for this model on
this machine.

The machine may be busy, so runs are interleaved (ours, theirs, ours, theirs, …): each side
reports its median FPS, and ``ratio`` is the median of the back-to-back pairs' ratios.
``cpu_ratio`` compares CPU time per frame (theirs / ours), which load on the machine moves
far less than FPS.
``latency_p50_ms`` is one frame at a time through ``Detector.detect``.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.sources.synthetic import FrameTruth, SyntheticScene
from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vision.models import ModelInfo
from edgeapp.engine.vision.postprocess import letterbox
from edgeapp.errors import EdgeAppError

_THROUGHPUT = re.compile(r"Throughput:\s*([0-9.]+)\s*FPS")
_COUNT = re.compile(r"Count:\s*([0-9]+)\s*iterations")


def benchmark_app_command() -> list[str]:
    """How to start OpenVINO's ``benchmark_app`` (shipped with the ``openvino`` package)."""
    exe = shutil.which("benchmark_app")
    if exe is None:
        beside = Path(sys.executable).with_name("benchmark_app")
        if beside.exists():
            exe = str(beside)
    return [exe] if exe else [sys.executable, "-m", "openvino.tools.benchmark.main"]


@dataclass(frozen=True)
class AppRun:
    """One ``benchmark_app`` run: its throughput, inferences, and the CPU seconds it used."""

    fps: float
    count: int
    cpu_s: float | None


def _children_cpu_s() -> float | None:
    try:
        import resource
    except ImportError:  # Windows: no rusage; CPU figures are then n/a, never guessed
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_benchmark_app(xml: Path, shape: tuple[int, int], seconds: float | None,
                      device: str = "CPU", *, iterations: int | None = None) -> AppRun:
    """``benchmark_app`` on the raw IR at ``[1, 3, H, W]`` (``shape``) for ``seconds`` (or
    ``iterations``)."""
    cmd = [*benchmark_app_command(), "-m", str(xml), "-d", device, "-hint", "throughput",
           "-shape", f"[1,3,{shape[0]},{shape[1]}]"]
    cmd += ["-niter", str(iterations)] if iterations else ["-t", str(max(1, round(seconds or 1)))]
    before = _children_cpu_s()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=(seconds or 10) * 4 + 120,
                          check=False)
    after = _children_cpu_s()
    found = _THROUGHPUT.findall(done.stdout)
    count = _COUNT.findall(done.stdout)
    if done.returncode != 0 or not found or not count:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        raise EdgeAppError(f"benchmark_app failed (exit {done.returncode}): {' | '.join(tail)}")
    cpu = None if before is None or after is None else after - before
    return AppRun(float(found[-1]), int(count[-1]), cpu)


def held_out_frames(count: int, *, width: int = 1280, height: int = 720,
                    seed: int = 40000) -> list[tuple[np.ndarray, FrameTruth]]:
    """``count`` varied demo-camera frames with their truth, from seeds training never used
    (training renders seeds 10000-30999): one scene per frame, at a different moment of it."""
    catalog = load_catalog()
    out = []
    for k in range(count):
        scene = SyntheticScene(catalog, width=width, height=height, seed=seed + k)
        for _ in range(20 + 13 * k % 160):
            scene.skip()
        out.append(scene.render())
    return out


def _ours(detector: Detector, frames: list[np.ndarray], batch: int,
          seconds: float) -> tuple[float, float]:
    """(frames per second, CPU ms per frame) of ``detect_batch`` for ``seconds``."""
    done = 0
    cpu = time.process_time()
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(0, len(frames), batch):
            done += len(detector.detect_batch(frames[i:i + batch]))
    return done / elapsed, (time.process_time() - cpu) / done * 1000


def bench_detector(
    grade: str | int = "n", input_size: int = 640, seconds: float = 10.0, *, rounds: int = 2,
    batch: int = 32, frames: int = 16, latency_frames: int = 30,
    models: str | Path | None = None, device: str = "CPU",
) -> dict[str, Any]:
    """Throughput of ``Detector.detect_batch`` vs ``benchmark_app`` on the same IR and size.

    ``frames`` distinct held-out frames are cycled into batches of ``batch``. benchmark_app
    never drains its requests; each ``detect_batch`` call does at its end, which costs about
    5 % at 16 frames a call, 2 % at 32 and nothing measurable at 64 (yolo11n, 2 cores).

    Besides FPS, both sides' CPU time per frame: on a machine that other work keeps busy the
    FPS of each run depends on what the scheduler gave it, while CPU ms per frame measures
    the work itself. benchmark_app's start (read + compile) is measured once with a minimal
    run and taken off its CPU time.
    """
    g = Grade.parse(grade)
    with Detector(models, grade=g, input_size=input_size, device=device) as detector:
        info: ModelInfo = detector.model_info
        size = detector.input_size
        unique = [image for image, _ in held_out_frames(frames)]
        images = (unique * (batch // len(unique) + 1))[:max(batch, len(unique))]
        shape = letterbox(*images[0].shape[:2], size).shape  # what the detector feeds
        detector.detect_batch(images[:batch])  # compile + warm up outside the timing
        start_up = run_benchmark_app(info.path, shape, None, device, iterations=1)
        ours: list[tuple[float, float]] = []
        theirs: list[AppRun] = []
        for _ in range(rounds):
            ours.append(_ours(detector, images, batch, seconds))
            theirs.append(run_benchmark_app(info.path, shape, seconds, device))
        latencies = []
        for image in (unique * (latency_frames // len(unique) + 1))[:latency_frames]:
            t = time.perf_counter()
            detector.detect(image)
            latencies.append(time.perf_counter() - t)
    edgeapp_fps = statistics.median(fps for fps, _ in ours)
    ov_fps = statistics.median(run.fps for run in theirs)
    # Each pair ran back to back, so its ratio cancels most of the background load's drift.
    pair_ratios = [a[0] / b.fps for a, b in zip(ours, theirs, strict=True) if b.fps > 0]
    our_cpu = statistics.median(cpu for _, cpu in ours)
    their_cpu = None
    if start_up.cpu_s is not None and all(r.cpu_s is not None for r in theirs):
        their_cpu = statistics.median(
            max(0.0, (r.cpu_s or 0.0) - (start_up.cpu_s or 0.0)) / max(1, r.count - start_up.count)
            * 1000 for r in theirs)
    return {
        "model": info.name, "grade": g.name.lower(),
        "fallback": detector.fallback, "input": size, "input_shape": f"{shape[1]}x{shape[0]}",
        "frame": f"{images[0].shape[1]}x{images[0].shape[0]}", "batch": batch,
        "edgeapp_fps": round(edgeapp_fps, 1), "openvino_benchmark_fps": round(ov_fps, 1),
        "ratio": round(statistics.median(pair_ratios), 3) if pair_ratios else None,
        "edgeapp_cpu_ms_per_frame": round(our_cpu, 2),
        "openvino_benchmark_cpu_ms_per_frame": None if their_cpu is None else round(their_cpu, 2),
        "cpu_ratio": None if not their_cpu else round(their_cpu / our_cpu, 3),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "runs": {"edgeapp_fps": [round(fps, 1) for fps, _ in ours],
                 "openvino_benchmark_fps": [round(run.fps, 1) for run in theirs]},
    }


def add_arguments(parser) -> None:  # type: ignore[no-untyped-def]
    """CLI options of ``edgeapp bench detector``."""
    parser.add_argument("--grade", default="n", help="n|s|m or low|medium|high (default n)")
    parser.add_argument("--input", type=int, default=640,
                        help="input size, capped at the model's training size (default 640)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved ours/benchmark_app pairs; medians reported")
    parser.add_argument("--batch", type=int, default=32,
                        help="frames per detect_batch call (default 32; each call ends by "
                             "draining the requests, which smaller batches pay more often)")
    parser.add_argument("--models", default=None, help="models folder (default: shipped)")


def run_detector_bench(args) -> dict:  # type: ignore[no-untyped-def]
    """``edgeapp bench detector``."""
    return bench_detector(args.grade, args.input, args.seconds, rounds=args.rounds,
                          batch=args.batch, models=args.models)
