"""Write the synthetic camera to a video file with its ground truth beside it as JSON, and
read that truth back when the clip is played, so a recorded clip is scored like the camera."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeapp.engine.orders.catalog import Catalog
from edgeapp.engine.sources.synthetic import FrameTruth, OrderTruth, SyntheticScene
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


@dataclass
class RecordedTruth:
    """A recorded clip's truth as a file source plays it: the frame at each position and the
    orders, with ``finished_orders()`` like the synthetic scene's (loops counted)."""

    orders: list[OrderTruth]
    frames: list[FrameTruth]
    position: int = 0  # frames played in this pass through the file
    passes: int = 0  # complete passes (a looped file)

    @classmethod
    def load(cls, path: Path) -> RecordedTruth:
        """Read ``clip.truth.json``; InputError naming the file if it is not one."""
        try:
            doc = json.loads(path.read_text())
            orders = [OrderTruth(order_id=str(o["order_id"]), station_id=str(o["station_id"]),
                                 expected=dict(o["expected"]), packed=dict(o["packed"]),
                                 error=o.get("error"), start_frame=int(o["start_frame"]),
                                 end_frame=int(o["end_frame"])) for o in doc["orders"]]
            frames = [_frame_truth(f) for f in doc["frames"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a truth file that edgeapp record wrote ({exc!r})") \
                from exc
        return cls(orders, frames)

    def restart(self) -> None:
        """The file starts again from its first frame."""
        if self.position:
            self.passes += 1
        self.position = 0

    def next(self) -> FrameTruth | None:
        """The truth of the frame just grabbed (None past the recorded frames)."""
        index, self.position = self.position, self.position + 1
        return self.frames[index] if index < len(self.frames) else None

    def finished_orders(self) -> list[OrderTruth]:
        """Orders whose bag has left the counter in what was played (each pass counts)."""
        whole = [o for o in self.orders if o.end_frame < len(self.frames)]
        return whole * self.passes + [o for o in whole if o.end_frame < self.position]


def _frame_truth(f: dict[str, Any]) -> FrameTruth:
    boxes = np.asarray(f["boxes"], np.float32).reshape(-1, 4)
    return FrameTruth(int(f["frame"]), None if f["order_id"] is None else str(f["order_id"]),
                      boxes, np.asarray(f["classes"], np.int64))


def load_recorded_truth(video: Path) -> RecordedTruth | None:
    """The truth beside ``video`` if ``edgeapp record`` wrote one, else None."""
    path = truth_path(video)
    return RecordedTruth.load(path) if path.is_file() else None
