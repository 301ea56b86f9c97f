"""Frames from stations to the Producer and their detections back, over ZeroMQ.

With the Redis backend a station may run on another machine, so its frames cannot wait in
shared memory: the station's ``DEALER`` (routing id = its name) sends each paced frame as a
small msgpack header and the raw BGR buffer to the engine's ``ROUTER``
(``distributed.stations_bind``), which submits it to the Producer; the detections the
Collector releases for that station go back on the same line. One data path, as with local
stations: only the hop into the Producer differs. Both ends drop rather than queue (frames
are live: a late one is worth nothing), and a station that restarts under the same name takes
its line over (``ROUTER_HANDOVER``). CURVE as for workers when the engine has keys.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import zmq

from edgeapp.engine.distributed.endpoint import ServerEndpoint, client_socket
from edgeapp.engine.distributed.wakeup import Waker
from edgeapp.engine.stations import messages as m

logger = logging.getLogger(__name__)

_MAX_SIDE = 8192
_MAX_MESSAGE = 3 * _MAX_SIDE * 4320 + 4096
_QUEUE = 64  # detections waiting for the socket thread; beyond, the oldest are dropped
_STATION_HWM = 4  # frames a station lets wait for the engine; beyond, frames are dropped

SubmitFrame = Callable[[str, int, np.ndarray, float], None]


class FrameGateway:
    """The engine's end: frames in (to ``submit``), detections out (``send_detections``)."""

    def __init__(self, address: str, submit: SubmitFrame, *, keys_dir: Path | None = None,
                 insecure: bool = False) -> None:
        self._submit = submit
        self._endpoint = ServerEndpoint(zmq.ROUTER, address, max_message_bytes=_MAX_MESSAGE,
                                        keys_dir=keys_dir, insecure=insecure,
                                        options={zmq.ROUTER_HANDOVER: 1, zmq.SNDHWM: 64})
        self.address = self._endpoint.address
        self._out: collections.deque[tuple[bytes, bytes, bytes]] = collections.deque(
            maxlen=_QUEUE)
        self._waker = Waker()
        self._stop = threading.Event()
        self.frames_in = 0
        self.bad_messages = 0
        self._thread = threading.Thread(target=self._run, name="engine-frames", daemon=True)

    def start(self) -> None:
        """Serve on the ``engine-frames`` thread."""
        self._thread.start()

    def send_detections(self, station: str, detections: m.Detections) -> None:
        """Queue ``detections`` for ``station`` (any thread; never blocks)."""
        dets = np.ascontiguousarray(detections.detections, np.float32).reshape(-1, 6)
        header = msgpack.packb({"t": "det", "seq": detections.seq, "n": len(dets)})
        self._out.append((station.encode(), header, dets.tobytes()))
        self._waker.wake()

    def stop(self) -> None:
        """End the thread (it closes the socket)."""
        self._stop.set()
        self._waker.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        else:
            self._close()
        return not self._thread.is_alive()

    def _run(self) -> None:
        sock = self._endpoint.socket
        assert sock is not None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._waker.fileno(), zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self._waker.fileno() in ready:
                    self._waker.drain()
                while self._out:
                    try:
                        sock.send_multipart(self._out.popleft(), zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        pass  # that station does not keep up: its detections are dropped
                if sock in ready:
                    self._read(sock)
        finally:
            self._close()

    def _read(self, sock: zmq.Socket) -> None:
        for _ in range(256):  # then look at the outgoing queue again
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                station, seq, ts, image = _frame(parts)
            except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
                self.bad_messages += 1
                logger.warning("bad frame message dropped: %s", exc)
                continue
            if self._endpoint.revoked(self._endpoint.user_id(parts[-1])):
                continue
            self.frames_in += 1
            self._submit(station, seq, image, ts)

    def _close(self) -> None:
        self._endpoint.close()
        self._waker.close()


def _frame(parts: list[zmq.Frame]) -> tuple[str, int, float, np.ndarray]:
    if len(parts) != 3:
        raise ValueError(f"{len(parts)} parts, expected 3")
    header = msgpack.unpackb(parts[1].bytes, raw=False, max_str_len=256, max_map_len=16)
    if not isinstance(header, dict) or header.get("t") != "frame":
        raise ValueError("not a frame header")
    h, w = int(header["h"]), int(header["w"])
    if not (0 < h <= _MAX_SIDE and 0 < w <= _MAX_SIDE):
        raise ValueError(f"frame size {w}x{h}")
    data = parts[2].buffer
    if len(data) != h * w * 3:
        raise ValueError(f"{len(data)} bytes for a {w}x{h} BGR frame")
    image = np.frombuffer(data, np.uint8).reshape(h, w, 3)
    return parts[0].bytes.decode(), int(header["seq"]), float(header["ts"]), image


class FrameLink:
    """The station's end: ``send_frame`` (any thread), detections to ``on_detections``."""

    def __init__(self, station: str, on_detections: Callable[[m.Detections], None], *,
                 keys: object | None = None) -> None:
        self._station = station
        self._on_detections = on_detections
        self._keys = keys
        self._context = zmq.Context()
        self._address: str | None = None
        self._want: str | None = None
        self._out: collections.deque[tuple[bytes, np.ndarray]] = collections.deque(maxlen=2)
        self._waker = Waker()
        self._stop = threading.Event()
        self.frames_sent = 0
        self.frames_dropped = 0  # no engine to take them, or it did not keep up
        self._thread = threading.Thread(target=self._run, name="station-frames", daemon=True)

    def start(self) -> None:
        """Run the socket on the ``station-frames`` thread."""
        self._thread.start()

    def connect(self, address: str | None) -> None:
        """Send to the engine at ``address`` (None: nowhere yet); reconnects on a change."""
        self._want = address
        self._waker.wake()

    def send_frame(self, seq: int, capture_ts: float, image: np.ndarray) -> None:
        """Queue a frame (the newest two wait; older ones are dropped)."""
        h, w = image.shape[:2]
        header = msgpack.packb({"t": "frame", "seq": seq, "ts": capture_ts, "h": h, "w": w})
        if len(self._out) == self._out.maxlen:
            self.frames_dropped += 1
        self._out.append((header, np.ascontiguousarray(image)))
        self._waker.wake()

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()
        self._waker.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self._waker.close()
            self._context.term()
        return not alive

    def _socket(self) -> zmq.Socket | None:
        if self._want is None:
            return None
        sock = client_socket(self._context, zmq.DEALER, self._want, self._keys,  # type: ignore[arg-type]
                             connect=False, routing_id=self._station.encode(),
                             sndhwm=_STATION_HWM, rcvhwm=64, immediate=1)
        sock.connect(self._want)
        self._address = self._want
        return sock

    def _run(self) -> None:
        sock: zmq.Socket | None = None
        poller = zmq.Poller()
        poller.register(self._waker.fileno(), zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if self._want != self._address:
                    if sock is not None:
                        poller.unregister(sock)
                        sock.close(linger=0)
                    sock = self._socket()
                    if sock is not None:
                        poller.register(sock, zmq.POLLIN)
                ready = dict(poller.poll(200))
                if self._waker.fileno() in ready:
                    self._waker.drain()
                self._send(sock)
                if sock is not None and sock in ready:
                    self._read(sock)
        finally:
            if sock is not None:
                sock.close(linger=0)

    def _send(self, sock: zmq.Socket | None) -> None:
        while self._out:
            header, image = self._out.popleft()
            if sock is None:
                self.frames_dropped += 1
                continue
            try:
                sock.send_multipart([header, image.data], zmq.NOBLOCK, copy=False)
                self.frames_sent += 1
            except zmq.Again:
                self.frames_dropped += 1  # no engine listening, or it is behind

    def _read(self, sock: zmq.Socket) -> None:
        while True:
            try:
                header_raw, data = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue  # not two parts: not ours
            try:
                header = msgpack.unpackb(header_raw, raw=False, max_map_len=16)
                n = int(header["n"])
                if header.get("t") != "det" or len(data) != n * 24:
                    raise ValueError("bad detections message")
                dets = np.frombuffer(data, np.float32).reshape(n, 6).copy()
            except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
                logger.warning("bad detections message dropped: %s", exc)
                continue
            self._on_detections(m.Detections(int(header["seq"]), dets))
