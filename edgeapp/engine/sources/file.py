"""Video files (optionally looped), and the OpenCV capture plumbing the other cameras share."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edgeapp.engine.sources.base import Source
from edgeapp.errors import InputError, SourceError

if TYPE_CHECKING:
    from edgeapp.engine.sources.record import RecordedTruth

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
    """A video file played in real time at its own frame rate; ENDED at its end unless looped.

    A clip ``edgeapp record`` wrote has its truth beside it (``clip.truth.json``): its frames
    then carry their ``FrameTruth`` and ``scene`` holds the orders, as the synthetic camera's
    do, so the station scores its verdicts against them.
    """

    live = False
    finite = True
    default_max_reconnects = 0  # a file that fails once will fail again: go OFFLINE

    def __init__(self, path: str | Path, *, stream_key: str, loop: bool = False,
                 fallback_fps: float = 30.0, **kwargs: Any) -> None:
        super().__init__(stream_key, loop=loop, **kwargs)
        self.path = Path(path)
        # Some containers carry no frame rate; play those at this one rather than not at all.
        self.fallback_fps = fallback_fps
        self.scene: RecordedTruth | None = None
        self._truth_read = False

    def describe(self) -> str:
        """The file's path."""
        return str(self.path)

    def _open(self) -> tuple[float, int, int]:
        self._cap = _open_capture(self.path)
        self._read_truth()
        if self.scene is not None:
            self.scene.restart()
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or not 0.0 < fps <= 1000.0:
            logger.warning("%s: no usable frame rate (%s); playing at %.1f fps",
                           self.path, fps, self.fallback_fps)
            fps = self.fallback_fps
        return (fps, int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def _read_truth(self) -> None:
        """Once, on the source thread: the recorded truth beside the file, if it fits it."""
        if self._truth_read:
            return
        self._truth_read = True
        from edgeapp.engine.sources.record import load_recorded_truth

        try:
            truth = load_recorded_truth(self.path)
        except InputError as exc:
            logger.warning("%s: played without truth: %s", self.path, exc)
            return
        frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self._cap else 0
        if truth is not None and frames and frames != len(truth.frames):
            logger.warning("%s: played without truth: the truth has %d frames, the video %d",
                           self.path, len(truth.frames), frames)
            return
        self.scene = truth

    def _retrieve(self) -> tuple[np.ndarray | None, Any]:
        image, _ = super()._retrieve()
        return image, (self.scene.next() if self.scene is not None else None)

    def _skip(self) -> None:
        if self.scene is not None:
            self.scene.next()  # the pacer skipped it, but the clip moved on a frame

    def _scale_truth(self, truth: Any, sx: float, sy: float) -> Any:
        scale = np.array([sx, sy, sx, sy], np.float32)
        return dataclasses.replace(truth, boxes=truth.boxes * scale)
