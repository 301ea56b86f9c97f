"""A real MJPEG-over-HTTP camera on loopback for source tests: stop it, start it again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# frames(index) -> the BGR image to send as the connection's ``index``-th frame.
FrameSource = Callable[[int], np.ndarray]


def numbered_frame(index: int, width: int, height: int) -> np.ndarray:
    """A grey frame with its number on it."""
    img = np.full((height, width, 3), (index * 7) % 256, np.uint8)
    cv2.putText(img, str(index), (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0,
                (255, 255, 255), 2)
    return img


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 2.0  # a client that stops reading cannot block a send (and so stop()) forever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        if self.path != "/stream.mjpg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        period = 1.0 / srv.fps
        index = 0
        try:
            while not srv.closing.is_set():
                if srv.frozen.is_set():  # a frozen camera: connection open, no frames
                    srv.closing.wait(period)
                    continue
                image = (srv.frames(index) if srv.frames is not None
                         else numbered_frame(index, srv.width, srv.height))
                data = _jpeg(image)
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode())
                self.wfile.write(data + b"\r\n")
                self.wfile.flush()
                index += 1
                srv.closing.wait(period)
        except OSError:
            pass  # the client went away


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close(), so a stop leaves none behind.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, port: int, fps: float, width: int, height: int,
                 frames: FrameSource | None) -> None:
        self.fps, self.width, self.height, self.frames = fps, width, height, frames
        self.closing = threading.Event()
        self.frozen = threading.Event()
        super().__init__(("127.0.0.1", port), _Handler)


class MjpegServer:
    """Serves ``/stream.mjpg`` at about ``fps`` on 127.0.0.1; restartable on the same port.

    Frames are numbered grey frames, or what ``frames(index)`` draws (say a synthetic
    counter, whose world then stands still while the server is stopped)."""

    def __init__(self, port: int = 0, fps: float = 15.0, width: int = 160,
                 height: int = 120, frames: FrameSource | None = None) -> None:
        self.port, self.fps, self.width, self.height = port, fps, width, height
        self.frames = frames
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stream's address."""
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        """Listen (on the same port as before after a restart) and serve in a thread."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._server = _Server(self.port, self.fps, self.width, self.height,
                                       self.frames)
                break
            except OSError:
                # The old socket may linger for a moment after a stop.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="mjpeg-server")
        self._thread.start()
        return self

    def freeze(self, frozen: bool = True) -> None:
        """Keep connections open but stop (or resume) sending frames, like a hung camera."""
        if self._server is not None:
            (self._server.frozen.set if frozen else self._server.frozen.clear)()

    def stop(self) -> None:
        """Stop listening and cut every open stream."""
        if self._server is None:
            return
        srv, self._server = self._server, None
        srv.closing.set()
        srv.shutdown()
        srv.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
