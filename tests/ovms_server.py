"""A real OpenAI-compatible chat-completions server (as OVMS speaks it) on loopback, for tests.

Serves ``POST /v3/chat/completions`` and ``POST /v1/chat/completions`` with HTTP/1.1
keep-alive. Behaviour is set per test through attributes:
- ``answer``: a function of the request body that returns the assistant text (default:
  ``"burger x N"`` for N image parts);
- ``mode``: ``"normal"``, ``"garbage"`` (non-JSON 200), ``"wrong_shape"`` (JSON without
  ``choices``), ``"empty"`` (content ``""``), ``"status"`` (answer ``status_code``);
- ``delay_s``: sleep before answering (a slow server); ``fail_first``: answer
  ``fail_status`` (500) to the next N calls;
- ``stop()``: the server is down (open connections are cut too).
It records every call (``calls``), the most handlers busy at once (``max_active``) and the
connections it accepted (``connections``).
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

PATHS = ("/v3/chat/completions", "/v1/chat/completions")
DATA_URL_PREFIX = "data:image/jpeg;base64,"


@dataclass
class Call:
    """One request the server got."""

    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any = None  # the decoded JSON, None when it was not JSON
    received: float = field(default_factory=time.monotonic)


def image_urls(body: dict[str, Any]) -> list[str]:
    """The ``image_url`` URLs of all messages, in order."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls += [part["image_url"]["url"] for part in content
                     if part.get("type") == "image_url"]
    return urls


def decode_images(body: dict[str, Any]) -> list[np.ndarray]:
    """Every image part decoded with cv2; raises ValueError for anything not a base64 JPEG."""
    images = []
    for url in image_urls(body):
        if not url.startswith(DATA_URL_PREFIX):
            raise ValueError(f"not a JPEG data URL: {url[:40]!r}")
        try:
            data = base64.b64decode(url[len(DATA_URL_PREFIX):], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"bad base64: {exc}") from None
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None or data[:2] != b"\xff\xd8":
            raise ValueError("image part is not a decodable JPEG")
        images.append(image)
    return images


def prompt_text(body: dict[str, Any]) -> str:
    """All text of all messages (system and user), joined."""
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part.get("text", "") for part in content if part.get("type") == "text"]
    return "\n".join(texts)


def count_images_answer(body: dict[str, Any]) -> str:
    """The default script: one burger per image part."""
    return f"burger x {len(image_urls(body))}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as OVMS
    timeout = 5.0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean

    def setup(self) -> None:
        super().setup()
        owner = self.server.owner
        with owner.lock:
            self.server.open_sockets.add(self.connection)
            owner.connections += 1

    def finish(self) -> None:
        with self.server.owner.lock:
            self.server.open_sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        call = Call(self.path, dict(self.headers.items()), raw)
        try:
            call.body = json.loads(raw)
        except ValueError:
            call.body = None
        with owner.lock:
            owner.calls.append(call)
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
            fail = owner.fail_first > 0
            if fail:
                owner.fail_first -= 1
        try:
            self._answer(owner, call, fail)
        except OSError:
            pass  # the client gave up (timeout) or the server is stopping
        finally:
            with owner.lock:
                owner.active -= 1

    def _answer(self, owner: OvmsServer, call: Call, fail: bool) -> None:
        if self.path not in PATHS:
            self._send(404, {"error": f"no route {self.path}"})
            return
        if call.body is None:
            self._send(400, {"error": "body is not JSON"})
            return
        if owner.delay_s > 0 and self.server.closing.wait(owner.delay_s):
            self.close_connection = True
            return
        if fail:
            self._send(owner.fail_status, {"error": "scripted failure"})
        elif owner.mode == "status":
            self._send(owner.status_code, {"error": f"scripted status {owner.status_code}"})
        elif owner.mode == "garbage":
            self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
        elif owner.mode == "wrong_shape":
            self._send(200, {"result": "burger x 1"})
        else:
            content = "" if owner.mode == "empty" else owner.answer(call.body)
            self._send(200, {
                "id": f"chatcmpl-{len(owner.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.body.get("model", ""),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            })

    def _send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close(), so a stop leaves none behind;
    # stop() cuts kept-alive sockets first so that join is quick.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, owner: OvmsServer, port: int) -> None:
        self.owner = owner
        self.closing = threading.Event()
        self.open_sockets: set[socket.socket] = set()
        super().__init__(("127.0.0.1", port), _Handler)


class OvmsServer:
    """An OpenAI-compatible chat server on 127.0.0.1 with scriptable behaviour."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.answer: Callable[[dict[str, Any]], str] = count_images_answer
        self.mode = "normal"
        self.status_code = 400
        self.fail_status = 500
        self.fail_first = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()  # guards the counters below and fail_first
        self.calls: list[Call] = []
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, without the API path."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OvmsServer:
        """Listen (on the same port as before after a restart) and serve in a thread."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._server = _Server(self, self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="ovms-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection: the server is down."""
        if self._server is None:
            return
        srv, self._server = self._server, None
        srv.closing.set()
        srv.shutdown()
        with self.lock:
            sockets = list(srv.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        srv.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> OvmsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
