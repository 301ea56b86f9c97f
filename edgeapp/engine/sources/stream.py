"""Network cameras: RTSP and HTTP (MJPEG and the like) through OpenCV's FFMPEG backend."""

from __future__ import annotations

import re
from typing import Any

import cv2

from edgeapp.engine.sources.file import CaptureSource
from edgeapp.errors import SourceError

SCHEMES = ("rtsp", "rtsps", "http", "https")

_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def redact(url: str) -> str:
    """``url`` with any ``user:password@`` replaced, for logs and the UI."""
    return _CREDENTIALS.sub("***@", url)


class StreamSource(CaptureSource):
    """An RTSP or HTTP camera; reconnects with backoff and never blocks its caller.

    ``open_timeout`` bounds connecting, ``read_timeout`` bounds waiting for the first frame
    and every later one (a stream that stalls longer goes RECONNECTING). Both are handed to
    FFMPEG, whose blocking calls run only on the source's own thread.
    """

    live = True
    finite = False
    default_max_reconnects = None

    def __init__(self, url: str, *, stream_key: str, open_timeout: float = 5.0,
                 read_timeout: float = 5.0, **kwargs: Any) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in SCHEMES:
            raise SourceError(f"not a network camera URL (rtsp/http): {redact(url)}")
        super().__init__(stream_key, **kwargs)
        self.url = url
        self.open_timeout, self.read_timeout = open_timeout, read_timeout

    def describe(self) -> str:
        """The URL without credentials."""
        return redact(self.url)

    def _open(self) -> tuple[float, int, int]:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout * 1000),
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.describe()}: refused, no answer or no video "
                              f"within {self.open_timeout:g} s")
        self._cap = cap
        # FFMPEG guesses 25 fps for MJPEG over HTTP whatever the camera sends; it is a label
        # only: live sources are paced by arrival time, not by this number.
        return (float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
