"""``edgeapp record``: write a camera to a video file (synthetic: with its ground truth)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "record"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``record``."""
    p = subparsers.add_parser(
        NAME, help="record the synthetic camera to a video file with its ground truth",
        description="Record the synthetic order-station camera to a video (.mp4 or .avi); "
        "its ground truth (boxes per frame, orders and right verdicts) is written beside it "
        "as NAME.truth.json.")
    p.add_argument("out", type=Path, help="output video file, e.g. out.mp4")
    p.add_argument("--source", default="synthetic", choices=["synthetic"],
                   help="what to record (only the synthetic camera has ground truth)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the clip")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=0, help="same seed, same clip")
    p.add_argument("--wrong-order-rate", type=float, default=0.2,
                   help="share of orders packed wrong (0..1)")


def run(args: argparse.Namespace) -> int:
    """Record and print a one-line JSON summary."""
    from edgeapp.config import load_config
    from edgeapp.engine.orders.catalog import load_catalog
    from edgeapp.engine.sources.record import record_synthetic
    from edgeapp.errors import InputError

    if not 0.0 <= args.wrong_order_rate <= 1.0:
        raise InputError(f"record: --wrong-order-rate must be in 0..1, got {args.wrong_order_rate}")
    cfg = load_config(getattr(args, "config", None))
    catalog = load_catalog(cfg.orders_path, cfg.inventory_path)
    summary = record_synthetic(
        args.out, args.seconds, catalog, width=args.width, height=args.height, fps=args.fps,
        seed=args.seed, wrong_order_rate=args.wrong_order_rate)
    print(json.dumps(summary))
    return 0
