"""``edgeapp bench orders``: the order flow offline — how many verdicts are right, and why not.

The station's own parts, without the processes, the pacing or the sockets: synthetic scenes
(one per seed, 1280×720 at 15 FPS, a share packed wrong) are paced at ``--fps-level`` and
scaled to ``--scale`` as the pacer would, detected by the station's detector at ``--grade``
(the input size following the scale, as the workers do), tracked by the order tracker with
the real order-ID reader, their frames selected by the frame selector, and counted by the
``local`` VLM backend at ``--vlm-grade``; each verdict is checked against the scene's truth.
Time is the scene's own (frame index / FPS), so the figure does not depend on how busy the
machine is; only the wall time does. Every wrong verdict is listed with what was packed and
what the VLM saw, so a confusion (coffee read as cola) or a count one too high shows.

Seeds: the demo's stations are 0-3, training uses 10000-30999, ``models verify`` 40000 and
``bench ocr`` 50000+; ``--seeds`` picks the scenes.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from edgeapp.config import load_config
from edgeapp.engine.engine_setup import input_size_for
from edgeapp.engine.orders.catalog import TICKET_CLASS, Catalog, load_catalog
from edgeapp.engine.orders.selector import select_frames
from edgeapp.engine.orders.tracker import OrderSegment, OrderTracker
from edgeapp.engine.orders.validator import validate
from edgeapp.engine.sources.pacer import Pacer
from edgeapp.engine.sources.synthetic import SyntheticScene
from edgeapp.engine.stations.order_flow import STEADY_S, STILL_S
from edgeapp.engine.vision.detector import open_detector
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vlm.local_backend import LocalBackend
from edgeapp.engine.vlm.request import VlmRequest

SOURCE_FPS = 15.0


@dataclass(frozen=True)
class Settings:
    """What the run models: stream parameters, grades, order logic."""

    fps_level: float = 0.66
    scale: float = 1.0
    grade: str = "low"  # the station's detector (the stream's grade)
    vlm_grade: str = "medium"
    top_k: int = 2
    clear_seconds: float = 1.0
    wrong_order_rate: float = 0.2
    confirm_grade: str = "high"  # the judge's second look (vlm.confirm_grade); none: never


def _segment_truth(segment: OrderSegment, seen: list[tuple[float, str | None, int]],
                   scene: SyntheticScene) -> tuple[str, str, Any] | None:
    """(order id the camera showed, its right verdict, its truth) for a segment, as the
    station finds it: the order shown most in the segment's frames."""
    shown = Counter(oid for ts, oid, _ in seen
                    if oid is not None and segment.start_ts <= ts <= segment.last_busy_ts)
    if not shown:
        return None
    oid = shown.most_common(1)[0][0]
    index = min(i for ts, o, i in seen
                if o == oid and segment.start_ts <= ts <= segment.last_busy_ts)
    for order in reversed(scene.orders):
        if order.order_id == oid and order.start_frame <= index <= order.end_frame:
            return order.order_id, order.verdict, order
    return None


def run_scene(seed: int, orders: int, settings: Settings, catalog: Catalog, station: Any,
              backend: LocalBackend, reader: Any, input_size: int | None) -> list[dict]:
    """Play one scene until ``orders`` orders were judged; one record per verdict."""
    s = settings
    ticket = catalog.class_names.index(TICKET_CLASS)
    scene = SyntheticScene(catalog, fps=SOURCE_FPS, seed=seed,
                           wrong_order_rate=s.wrong_order_rate, station_id=f"scene-{seed}")
    tracker = OrderTracker(f"scene-{seed}", reader, ticket_class=ticket,
                           clear_seconds=s.clear_seconds)
    pacer = Pacer(fps=s.fps_level * SOURCE_FPS if s.fps_level < 1.0 else None, scale=s.scale)
    seen: list[tuple[float, str | None, int]] = []
    records: list[dict] = []
    while len(records) < orders:
        t = scene.frame_index / SOURCE_FPS
        if not pacer.take(t):
            scene.skip()
            continue
        image, truth = scene.render()
        image = pacer.resize(image)
        seen.append((t, truth.order_id, truth.frame_index))
        segment = tracker.push(truth.frame_index, t, image,
                               station.detect(image, input_size=input_size))
        if segment is not None:
            records.append(judge(segment, seen, scene, settings, catalog, backend, seed))
            seen = [x for x in seen if x[0] >= segment.start_ts - 60.0]
    return records


def judge(segment: OrderSegment, seen: list[tuple[float, str | None, int]],
          scene: SyntheticScene, settings: Settings, catalog: Catalog,
          backend: LocalBackend, seed: int) -> dict:
    """One order's verdict as the station gives it, with the truth beside it."""
    ticket = catalog.class_names.index(TICKET_CLASS)
    frames = select_frames(list(segment.frames), settings.top_k, ticket,
                           min_run_s=STEADY_S, min_still_s=STILL_S)
    truth = _segment_truth(segment, seen, scene)
    expected = None if segment.order_id is None else catalog.expected(segment.order_id)
    detected, per_frame = None, []
    if expected is not None and frames:
        request = VlmRequest(f"scene-{seed}-{segment.start_ts}", f"scene-{seed}",
                             segment.order_id, tuple(f.image for f in frames))
        (answer,) = backend.infer_batch([request])
        detected = answer.items
    result = validate(segment.order_id, expected, detected, catalog,
                      truth_verdict=None if truth is None else truth[1])
    right = result.truth_correct
    if truth is not None and right is not None and segment.order_id != truth[0]:
        right = False
    if right is False and detected is not None:  # what the judge saw in each frame
        found = backend.detector.detect_batch([f.image for f in frames])
        per_frame = [backend.count_items([dets])[0] for dets in found]
    packed = None if truth is None else truth[2].packed
    return {
        "seed": seed, "order_id": segment.order_id, "truth_order": truth and truth[0],
        "truth_verdict": truth and truth[1], "status": result.status.value, "right": right,
        "expected": expected, "packed": packed, "detected": detected,
        "error": None if truth is None else truth[2].error,
        "frames": [(f.seq, round(f.still_s, 2)) for f in frames], "per_frame": per_frame,
        "ended_by": segment.ended_by,
        "span": [round(segment.start_ts, 2), round(segment.end_ts, 2)],
    }


def why_wrong(record: dict) -> str:
    """A wrong verdict, in a few words: what the VLM saw against what was packed."""
    if record["status"] == "unreadable":
        return "ticket not read"
    if record["truth_order"] != record["order_id"]:
        return "another order's ticket"
    packed, seen = record["packed"] or {}, record["detected"] or {}
    words = []
    for name in sorted(set(packed) | set(seen)):
        a, b = packed.get(name, 0), seen.get(name, 0)
        if a != b:
            words.append(f"{name} {b} of {a}")
    return ", ".join(words) or "?"


def bench_orders(seeds: list[int], orders_per_seed: int, settings: Settings) -> dict:
    """Run every seed; the figures and every wrong verdict."""
    config = load_config(None)
    catalog = load_catalog()
    m = config.models  # the thresholds the workers and the local VLM get from the config
    station = open_detector([m.path], conf=m.conf_threshold, iou=m.iou_threshold)
    station.set_grade(settings.grade)
    backend = LocalBackend.from_config(replace(config, vlm=replace(
        config.vlm, grade=settings.vlm_grade, confirm_grade=settings.confirm_grade)), catalog)
    from edgeapp.engine.vision.order_reader import OrderIdReader

    reader = OrderIdReader(catalog.orders, ticket_class=catalog.class_names.index(TICKET_CLASS),
                           search_frame_text=False)
    reader.warm_up()
    size = input_size_for(config, settings.scale, Grade.parse(settings.grade))
    t0 = time.monotonic()
    records: list[dict] = []
    try:
        for seed in seeds:
            records += run_scene(seed, orders_per_seed, settings, catalog, station, backend,
                                 reader.read, size)
        second_looks, confirm_model = backend.second_looks, backend.confirm_model
    finally:
        station.close()
        backend.close()
    judged = [r for r in records if r["right"] is not None]
    wrong = [r for r in judged if not r["right"]]
    return {
        "seeds": seeds, "settings": settings.__dict__, "orders": len(records),
        "judged": len(judged), "right": len(judged) - len(wrong),
        "verdict_accuracy": (len(judged) - len(wrong)) / len(judged) if judged else None,
        "by_status": dict(Counter(r["status"] for r in records)),
        "wrong": [{"seed": r["seed"], "order": r["order_id"], "truth": r["truth_verdict"],
                   "said": r["status"], "why": why_wrong(r), "packed": r["packed"],
                   "frames": r["frames"], "per_frame": r["per_frame"],
                   "ended_by": r["ended_by"], "span": r["span"]} for r in wrong],
        "second_looks": second_looks, "second_look_model": confirm_model,
        "wall_s": round(time.monotonic() - t0, 1),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options."""
    parser.add_argument("--seeds", default="0,1,2,3",
                        help="scene seeds, comma-separated (the demo's stations: 0,1,2,3)")
    parser.add_argument("--orders", type=int, default=50, help="orders judged per seed")
    parser.add_argument("--fps-level", type=float, default=Settings.fps_level)
    parser.add_argument("--scale", type=float, default=Settings.scale)
    parser.add_argument("--grade", default=Settings.grade, choices=["low", "medium", "high"],
                        help="the station's detector (the stream's grade)")
    parser.add_argument("--vlm-grade", default=Settings.vlm_grade,
                        choices=["low", "medium", "high"])
    parser.add_argument("--top-k", type=int, default=Settings.top_k)
    parser.add_argument("--confirm-grade", default=Settings.confirm_grade,
                        choices=["none", "low", "medium", "high"],
                        help="the judge's second look on a disagreeing count "
                             "(vlm.confirm_grade; none: never)")


def run_orders_bench(args: argparse.Namespace) -> dict:
    """``edgeapp bench orders``."""
    from edgeapp.errors import UsageError

    try:
        seeds = [int(x) for x in str(args.seeds).split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--seeds: expected numbers like 0,1,2, got {args.seeds!r}") from None
    if not seeds or args.orders < 1:
        raise UsageError("--seeds needs at least one seed and --orders at least 1")
    settings = Settings(fps_level=args.fps_level, scale=args.scale, grade=args.grade,
                        vlm_grade=args.vlm_grade, top_k=args.top_k,
                        confirm_grade=args.confirm_grade)
    return bench_orders(seeds, args.orders, settings)
