"""USB (UVC / V4L2) cameras by index."""

from __future__ import annotations

import sys
from typing import Any

import cv2

from edgeapp.engine.sources.file import CaptureSource
from edgeapp.errors import SourceError


def _backend() -> int:
    # CAP_ANY on Linux may try GStreamer or FFMPEG on /dev/videoN first; V4L2 is the one that
    # works for UVC cameras. Elsewhere OpenCV's default choice is right.
    return int(cv2.CAP_V4L2) if sys.platform.startswith("linux") else int(cv2.CAP_ANY)


class UsbSource(CaptureSource):
    """A local camera by OpenCV index; unplugging it means RECONNECTING until it is back."""

    live = True
    finite = False
    default_max_reconnects = None

    def __init__(self, index: int, *, stream_key: str, width: int | None = None,
                 height: int | None = None, fps: float | None = None, **kwargs: Any) -> None:
        if index < 0:
            raise SourceError(f"USB camera index must be >= 0, got {index}")
        super().__init__(stream_key, **kwargs)
        self.index = index
        self.request = (width, height, fps)  # asked of the camera; it may pick the nearest mode

    def describe(self) -> str:
        """``usb:N``."""
        return f"usb:{self.index}"

    def _open(self) -> tuple[float, int, int]:
        width, height, fps = self.request
        params: list[int] = []
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                params += [int(prop), int(value)]
        cap = cv2.VideoCapture(self.index, _backend(), params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"USB camera {self.index} not found or busy")
        self._cap = cap
        return (float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
