"""Write one stream's annotated output video from the Collector's in-order results.

edgeapp's results carry detections, not frames; the caller (who has the frames, e.g. the
station's frame ring) supplies them through ``frame_lookup(stream_key, seq)`` and the boxes are
drawn on them. A thesis-dialect worker sends the processed frame itself (``result.frame``):
that is written as it came. Subscribe an instance with ``collector.subscribe(out,
frames=True)``; results of other streams, and frames the lookup no longer has, are skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeapp.engine.distributed.collector import DetectionResult

FrameLookup = Callable[[str, int], "np.ndarray | None"]


def draw_detections(frame: np.ndarray, detections: np.ndarray,
                    labels: dict[int, str] | None = None) -> np.ndarray:
    """A copy of ``frame`` (BGR) with each ``x1, y1, x2, y2, score, class`` box drawn."""
    import cv2

    out = frame.copy()
    for x1, y1, x2, y2, score, cls in detections[:, :6]:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, (0, 255, 0), 2)
        name = (labels or {}).get(int(cls), str(int(cls)))
        cv2.putText(out, f"{name} {score:.2f}", (p1[0], max(12, p1[1] - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1, cv2.LINE_AA)
    return out


class VideoOutput:
    """A Collector subscriber that writes ``stream_key``'s annotated frames to ``path``."""

    def __init__(self, path: str | Path, stream_key: str, frame_lookup: FrameLookup,
                 fps: float = 15.0, labels: dict[int, str] | None = None,
                 fourcc: str = "MJPG") -> None:
        self.path, self.stream_key, self.fps = Path(path), stream_key, fps
        self.frame_lookup, self.labels, self.fourcc = frame_lookup, labels, fourcc
        self.written = 0
        self.missing = 0
        self._writer: Any = None
        self._lock = threading.Lock()

    def __call__(self, result: DetectionResult) -> None:
        """Draw and write one result (called on the Collector thread)."""
        if result.stream_key != self.stream_key:
            return
        if result.frame is not None:
            image = result.frame if result.frame.ndim == 3 else np.dstack([result.frame] * 3)
        else:
            frame = self.frame_lookup(result.stream_key, result.seq)
            if frame is None:
                self.missing += 1
                return
            image = draw_detections(frame, result.detections, self.labels)
        import cv2

        with self._lock:
            if self._writer is None:
                height, width = image.shape[:2]
                fourcc = cv2.VideoWriter.fourcc(*self.fourcc)
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            self._writer.write(np.ascontiguousarray(image))
            self.written += 1

    def close(self) -> None:
        """Finish the file."""
        with self._lock:
            if self._writer is not None:
                self._writer.release()
                self._writer = None
