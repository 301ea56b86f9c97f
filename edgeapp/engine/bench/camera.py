"""``edgeapp bench camera``: can one core render the demo's synthetic streams in real time?"""

from __future__ import annotations

import time

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.sources.synthetic import SyntheticScene


def bench_camera(
    streams: int = 4, width: int = 1280, height: int = 720, fps: float = 15.0,
    seconds: float = 5.0,
) -> dict:
    """Render ``streams`` scenes round-robin on this thread (one core) for ``seconds``.

    ``realtime_factor`` = rendered frames per second per stream / target fps; >= 1 means one
    core keeps all streams in real time.
    """
    catalog = load_catalog()
    scenes = [SyntheticScene(catalog, width=width, height=height, fps=fps, seed=i,
                             station_id=f"station-{i + 1}") for i in range(streams)]
    for scene in scenes:  # first frames build caches; keep them out of the figure
        scene.render()
    rendered = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for scene in scenes:
            scene.render()
        rendered += 1
    per_stream = rendered / elapsed
    return {"streams": streams, "width": width, "height": height,
            "fps_per_stream": round(per_stream, 1),
            "realtime_factor": round(per_stream / fps, 2)}


def add_arguments(parser) -> None:  # type: ignore[no-untyped-def]
    """CLI options of ``edgeapp bench camera``."""
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=5.0)


def run_camera_bench(args) -> dict:  # type: ignore[no-untyped-def]
    """``edgeapp bench camera``."""
    return bench_camera(args.streams, args.width, args.height, args.fps, args.seconds)
