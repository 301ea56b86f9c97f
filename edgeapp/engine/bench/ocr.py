"""``edgeapp bench ocr``: how often the order-ID reader reads the right ticket, and how fast.

Frames come from held-out synthetic stations (seeds >= 50000; training uses 10000-30999):
``frames_per_order`` frames of every order while its ticket is on the counter, orders
taken in turn from ``stations`` scenes with consecutive seeds, so the figure spans many
order numbers, exposures and ticket placements. Each frame is read twice: once with the
ticket's true box passed as a detection (the station's path) and once without detections
(the reader searches the frame). With ``use_qr=False`` the tickets carry no QR code and the
reader's QR decoder is off, so the figure is OCR alone.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np

from edgeapp.engine.orders.catalog import TICKET_CLASS, load_catalog
from edgeapp.engine.sources.synthetic import FrameTruth, SyntheticScene
from edgeapp.engine.vision.order_reader import OrderIdRead, OrderIdReader

# Share of tickets with a QR code when the QR path is measured (the demo camera's default).
QR_RATE = 0.5
HELD_OUT_SEED = 50000


def held_out_frames(
    frames: int, seed: int, *, width: int, height: int, qr_rate: float,
    frames_per_order: int = 2, orders_per_station: int = 25,
) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """Yield ``frames`` rendered frames that show a ticket, spread over orders and stations.

    Each order contributes ``frames_per_order`` frames at random moments of its first
    two seconds on the counter; after ``orders_per_station`` orders the next station
    (``seed + 1``, …) takes over. Frames in between are skipped, not drawn.
    """
    catalog = load_catalog()
    rng = np.random.default_rng([seed, 0x0C])
    made, station = 0, 0
    while made < frames:
        scene = SyntheticScene(catalog, width=width, height=height, seed=seed + station,
                               station_id=f"station-{station + 1}", qr_rate=qr_rate)
        station += 1
        orders_seen, offset, current, picks = 0, 0, None, set()
        while made < frames:
            truth = scene.truth()
            if truth.order_id is None:
                if current is not None and orders_seen >= orders_per_station:
                    break  # this station's share is done; the next order starts elsewhere
                scene.skip()
                current = None
                continue
            if current is None:  # a new ticket just appeared
                current, offset = truth.order_id, 0
                orders_seen += 1
                picks = set(rng.choice(np.arange(0, 25), frames_per_order, replace=False).tolist())
            if offset in picks:
                image, truth = scene.render()
                made += 1
                yield image, truth
            else:
                scene.skip()
            offset += 1


def _score(reads: list[tuple[OrderIdRead, str]], times: list[float]) -> dict:
    correct = sum(r.order_id == truth for r, truth in reads)
    wrong = sum(r.order_id is not None and r.order_id != truth for r, truth in reads)
    unreadable = sum(r.order_id is None for r, _ in reads)
    ms = np.asarray(times) * 1000.0
    return {
        "frames": len(reads),
        "read_correct": correct,
        "accuracy": round(correct / len(reads), 4) if reads else None,
        "wrong_accepted": wrong,
        "unreadable": unreadable,
        "reasons": dict(Counter(r.reason for r, _ in reads if r.reason)),
        "methods": dict(Counter(r.method for r, _ in reads if r.ok)),
        "ms_per_read_p50": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "ms_per_read_p90": round(float(np.percentile(ms, 90)), 1) if len(ms) else None,
    }


def bench_ocr(
    frames: int = 300, seed: int = HELD_OUT_SEED, use_qr: bool = False, *,
    width: int = 1280, height: int = 720, without_detections: bool = True, threads: int = 1,
    box_jitter: float = 0.0,
) -> dict:
    """Read ``frames`` held-out frames with and without detections; accuracy and timing.

    The top-level figures are for reads given the ticket's box (the station's path);
    ``without_detections`` holds the same figures when the reader searches the frame.
    ``ms_per_read_*`` is wall time of ``reader.read`` after ``warm_up()``, on ``threads``
    ONNX Runtime threads. ``box_jitter`` moves each edge of the true ticket box by up to
    that share of the box's size, the way a detector's box is off.
    """
    catalog = load_catalog()
    ticket = catalog.class_names.index(TICKET_CLASS)
    reader = OrderIdReader(catalog.orders, ticket_class=ticket, use_qr=use_qr, threads=threads)
    reader.warm_up()
    with_dets: list[tuple[OrderIdRead, str]] = []
    searched: list[tuple[OrderIdRead, str]] = []
    t_dets: list[float] = []
    t_search: list[float] = []
    orders: set[str] = set()
    jitter = np.random.default_rng([seed, 0x71])
    for image, truth in held_out_frames(frames, seed, width=width, height=height,
                                        qr_rate=QR_RATE if use_qr else 0.0):
        assert truth.order_id is not None
        orders.add(truth.order_id)
        box = truth.boxes[int(np.flatnonzero(truth.classes == ticket)[0])].astype(np.float64)
        if box_jitter > 0:
            size = np.tile(box[2:] - box[:2], 2)
            box = box + jitter.uniform(-box_jitter, box_jitter, 4) * size
        dets = np.array([[*box, 0.9, ticket]], np.float32)
        start = time.perf_counter()
        with_dets.append((reader.read(image, dets), truth.order_id))
        t_dets.append(time.perf_counter() - start)
        if without_detections:
            start = time.perf_counter()
            searched.append((reader.read(image), truth.order_id))
            t_search.append(time.perf_counter() - start)
    out = {"width": width, "height": height, "use_qr": use_qr,
           "qr_rate": QR_RATE if use_qr else 0.0, "seed": seed, "threads": threads,
           "box_jitter": box_jitter,
           "distinct_orders": len(orders), **_score(with_dets, t_dets)}
    if without_detections:
        out["without_detections"] = _score(searched, t_search)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgeapp bench ocr``."""
    parser.add_argument("--frames", type=int, default=300, help="frames with a ticket to read")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                        help="first station seed (>= 50000 keeps clear of training seeds)")
    parser.add_argument("--qr", action="store_true",
                        help="tickets carry QR codes half the time and the reader decodes them")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--box-jitter", type=float, default=0.0,
                        help="move the ticket box edges by up to this share of its size")


def run_ocr_bench(args: argparse.Namespace) -> dict:
    """Entry point of ``edgeapp bench ocr``; missing options take their defaults."""
    return bench_ocr(
        frames=getattr(args, "frames", 300), seed=getattr(args, "seed", HELD_OUT_SEED),
        use_qr=getattr(args, "qr", False), width=getattr(args, "width", 1280),
        height=getattr(args, "height", 720), threads=getattr(args, "threads", 1),
        box_jitter=getattr(args, "box_jitter", 0.0),
    )
