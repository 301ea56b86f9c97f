"""Video files (optionally looped), and the OpenCV capture plumbing the other cameras share."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeapp.engine.sources.base import Source
from edgeapp.errors import SourceError

logger = logging.getLogger(__name__)


class CaptureSource(Source):
    """A source read through ``cv2.VideoCapture``: grab, retrieve and release are shared."""

    _cap: cv2.VideoCapture | None = None

    def _grab(self) -> bool:
        return self._cap is not None and bool(self._cap.grab())

    def _retrieve(self) -> tuple[np.ndarray | None, Any]:
        if self._cap is None:
            return None, None
        ok, image = self._cap.retrieve()
        return (image if ok and image is not None and image.size else None), None

    def _close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as OpenCV reads it."""

    path: Path
    fps: float
    width: int
    height: int
    frames: int  # as the container says; may be 0 or approximate for some formats


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise SourceError(f"video file not found: {path}")
    if not path.is_file():
        raise SourceError(f"not a video file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open video file {path}: corrupt or unsupported format")
    return cap


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` here and now and read its first frame; SourceError naming the file if not."""
    path = Path(path)
    cap = _open_capture(path)
    try:
        ok, image = cap.read()
        if not ok or image is None:
            raise SourceError(f"cannot read a frame from video file {path}: corrupt or empty")
        return VideoInfo(path, float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                         int(image.shape[1]), int(image.shape[0]),
                         max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)))
    finally:
        cap.release()


class FileSource(CaptureSource):
    """A video file played in real time at its own frame rate; ENDED at its end unless looped."""

    live = False
    finite = True
    default_max_reconnects = 0  # a file that fails once will fail again: go OFFLINE

    def __init__(self, path: str | Path, *, stream_key: str, loop: bool = False,
                 fallback_fps: float = 30.0, **kwargs: Any) -> None:
        super().__init__(stream_key, loop=loop, **kwargs)
        self.path = Path(path)
        # Some containers carry no frame rate; play those at this one rather than not at all.
        self.fallback_fps = fallback_fps

    def describe(self) -> str:
        """The file's path."""
        return str(self.path)

    def _open(self) -> tuple[float, int, int]:
        self._cap = _open_capture(self.path)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or not 0.0 < fps <= 1000.0:
            logger.warning("%s: no usable frame rate (%s); playing at %.1f fps",
                           self.path, fps, self.fallback_fps)
            fps = self.fallback_fps
        return (fps, int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
