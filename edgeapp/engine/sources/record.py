"""Write the synthetic camera to a video file with its ground truth beside it as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2

from edgeapp.engine.orders.catalog import Catalog
from edgeapp.engine.sources.synthetic import SyntheticScene
from edgeapp.errors import InputError


def truth_path(video: Path) -> Path:
    """Where the ground truth of a recorded video lives: ``clip.mp4`` → ``clip.truth.json``."""
    return video.with_suffix(".truth.json")


def record_synthetic(
    out: Path,
    seconds: float,
    catalog: Catalog,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 15.0,
    seed: int = 0,
    wrong_order_rate: float = 0.2,
    station_id: str = "station-1",
) -> dict:
    """Record ``seconds`` of the synthetic camera to ``out``; returns a short summary."""
    if seconds <= 0:
        raise InputError(f"record: --seconds must be > 0, got {seconds}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if out.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise InputError(f"record: cannot write a video to {out} (try a .mp4 or .avi name)")
    scene = SyntheticScene(catalog, width=width, height=height, fps=fps, seed=seed,
                           wrong_order_rate=wrong_order_rate, station_id=station_id)
    frames = []
    try:
        for _ in range(max(1, round(seconds * fps))):
            image, truth = scene.render()
            writer.write(image)
            frames.append({
                "frame": truth.frame_index,
                "order_id": truth.order_id,
                "boxes": [[round(float(v), 1) for v in box] for box in truth.boxes],
                "classes": [int(c) for c in truth.classes],
            })
    finally:
        writer.release()
    n = len(frames)
    orders = [asdict(o) | {"verdict": o.verdict} for o in scene.orders if o.start_frame < n]
    doc = {
        "video": out.name, "station_id": station_id, "fps": fps, "width": width,
        "height": height, "seed": seed, "frames_total": n,
        "class_names": list(catalog.class_names), "orders": orders, "frames": frames,
    }
    truth_path(out).write_text(json.dumps(doc))
    return {"video": str(out), "truth": str(truth_path(out)), "frames": n,
            "orders": len(orders)}
