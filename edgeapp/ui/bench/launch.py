"""``edgeapp bench ui``: launch the window in a fresh process and read its figures.

Imports no Qt (the bench commands are all imported when ``edgeapp``'s parser is built, the
worker's too): the window runs in a child process, ``python -m edgeapp.ui.bench.window``, so
that ``seconds_to_window`` counts the launch as an operator sees it (interpreter, imports,
window) from the moment the process is spawned.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from edgeapp.errors import EdgeAppError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ui bench's options."""
    parser.add_argument("--stations", type=int, default=8, help="synthetic stations (8)")
    parser.add_argument("--fps", type=float, default=15.0, help="camera FPS (15)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds measured once every tile is live (30)")
    parser.add_argument("--size", default="640x360", metavar="WxH",
                        help="camera frame size (640x360)")
    parser.add_argument("--visible", action="store_true",
                        help="open the window on the display instead of offscreen")


def run_ui_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the window on ``--stations`` synthetic cameras; return its figures."""
    if args.stations < 1 or args.fps <= 0 or args.duration <= 0:
        raise EdgeAppError("--stations, --fps and --duration must be positive")
    width, _, height = args.size.partition("x")
    spec = {"config": None if args.config is None else str(args.config),
            "stations": args.stations, "fps": args.fps, "duration": args.duration,
            "width": int(width), "height": int(height)}
    env = dict(os.environ)
    if not args.visible:
        env["QT_QPA_PLATFORM"] = "offscreen"
    spec["launched_at"] = time.time()
    done = subprocess.run([sys.executable, "-m", "edgeapp.ui.bench.window", json.dumps(spec)],
                          env=env, stdout=subprocess.PIPE, text=True,
                          timeout=args.duration + 300, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise EdgeAppError(f"the ui bench's window process failed (exit {done.returncode}); "
                           "its errors are above")
    return json.loads(lines[-1])
