"""Frame-rate and resolution pacing: which source frames to take, and how big to make them."""

from __future__ import annotations

import enum
import math
import threading

import cv2
import numpy as np

from edgeapp.errors import InputError


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Pass to ``set_target`` for a value that should stay as it is."""

# Float sums of 1/3 can land a hair under 1.0; without this a 15 -> 5 fps stream would
# take frame 4 instead of 3 now and then.
_EPS = 1e-6
# At most one extra frame of credit: after a stall the stream resumes at the target rate
# instead of delivering a burst to catch up.
_MAX_CREDIT = 2.0


def even_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``(width, height)`` scaled down by ``scale`` and rounded to even numbers (codecs like it)."""
    if scale >= 1.0:
        return width, height
    w = max(2, int(round(width * scale / 2.0)) * 2)
    h = max(2, int(round(height * scale / 2.0)) * 2)
    return min(w, width), min(h, height)


def _check_fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"target fps must be > 0 (or None for the source's rate), got {fps}")
    return fps


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not math.isfinite(scale) or not 0.0 < scale <= 1.0:
        raise InputError(f"resolution scale must be in (0, 1], got {scale}")
    return scale


class Pacer:
    """Keeps a stream at a target FPS and resolution; thread-safe, changeable while running.

    ``take(t)`` is asked once per source frame with that frame's time on the source's clock
    (``seq / fps`` for files and the synthetic camera, the arrival time for live cameras). A
    credit accumulator adds ``target_fps * dt`` per frame and takes a frame per whole credit,
    so the kept rate is exact over any stretch of time instead of drifting the way
    "every k-th frame" rounding does (15 -> 10 fps takes 2 of every 3 frames, not 1 of 1 or 2).
    """

    def __init__(self, fps: float | None = None, scale: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._fps = _check_fps(fps)
        self._scale = _check_scale(scale)
        self._credit = 1.0
        self._last_t: float | None = None

    @property
    def fps(self) -> float | None:
        """Target frames per second; None keeps every source frame."""
        return self._fps

    @property
    def scale(self) -> float:
        """Output size as a share of the source size (1.0 = unchanged)."""
        return self._scale

    def set_target(
        self, *, fps: float | None | _Keep = KEEP, scale: float | _Keep = KEEP
    ) -> None:
        """Change the target FPS and/or scale; applies from the next source frame."""
        with self._lock:
            if fps is not KEEP:
                self._fps = _check_fps(fps)
                # Drop any surplus credit so a rate change cannot cause a burst.
                self._credit = min(self._credit, 1.0)
            if scale is not KEEP:
                self._scale = _check_scale(scale)

    def reset(self) -> None:
        """Forget the clock, so the next frame is taken (used when a stream restarts)."""
        with self._lock:
            self._credit, self._last_t = 1.0, None

    def take(self, t: float) -> bool:
        """Whether the source frame at source-clock time ``t`` (seconds) goes out."""
        with self._lock:
            last, self._last_t = self._last_t, t
            if self._fps is None:
                return True
            if last is not None:
                self._credit = min(_MAX_CREDIT, self._credit + self._fps * max(0.0, t - last))
            if self._credit >= 1.0 - _EPS:
                self._credit -= 1.0
                return True
            return False

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The size a ``width`` x ``height`` source frame is delivered at."""
        return even_size(width, height, self._scale)

    def resize(self, image: np.ndarray) -> np.ndarray:
        """``image`` scaled down to the target scale with INTER_AREA (returned as is at 1.0)."""
        h, w = image.shape[:2]
        size = even_size(w, h, self._scale)
        if size == (w, h):
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
