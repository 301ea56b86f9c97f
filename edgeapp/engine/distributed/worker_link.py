"""The worker's REQ connection to the Producer, reliable the Lazy Pirate way (zguide ch. 4).

Every request waits at most ``timeout_s`` for its reply. When none comes, the socket is closed
with ``linger=0`` and a fresh one is opened (a REQ socket that lost its reply is stuck
otherwise); the caller then registers again. A socket monitor watches the CURVE handshake so
that a worker whose key the Producer refuses can say so instead of retrying forever.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.endpoint import client_socket
from edgeapp.engine.distributed.keys import ClientKeys

logger = logging.getLogger(__name__)

_WATCHED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH \
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


class ProducerLink:
    """Send one request, get its reply or ``None`` after ``timeout_s`` (then reconnect)."""

    def __init__(self, context: zmq.Context, address: str, client_keys: ClientKeys | None,
                 timeout_s: float, max_message_bytes: int = 1 << 30) -> None:
        self.context, self.address, self.client_keys = context, address, client_keys
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self.reconnects = 0
        self.auth_failures = 0
        self.handshakes = 0
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._open()

    def request(self, msg: dict[str, Any], stop: threading.Event) -> list[zmq.Frame] | None:
        """One request/reply; ``None`` on timeout or when ``stop`` is set (socket is reset)."""
        assert self._sock is not None
        try:
            self._sock.send(p.pack(msg), zmq.NOBLOCK)
        except zmq.Again:  # not connected yet and nothing queued: same as a lost reply
            self.reset()
            return None
        deadline = time.monotonic() + self.timeout_s
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._sock.poll(min(100, int(left * 1000) + 1), zmq.POLLIN):
                return self._sock.recv_multipart(copy=False)
            self._read_monitor()
            if self.auth_failures and not self.handshakes:
                break  # refused before we ever got in: waiting longer will not help
        self.reset()
        return None

    def reset(self) -> None:
        """Throw the socket away and open a new one (new identity at the Producer)."""
        self._close_socket()
        self.reconnects += 1
        self._open()

    def close(self) -> None:
        """Close for good."""
        self._close_socket()

    def _open(self) -> None:
        self._sock = client_socket(self.context, zmq.REQ, self.address, self.client_keys,
                                   connect=False, maxmsgsize=self.max_message_bytes)
        if self.client_keys is not None:  # watch the handshake before it can happen
            self._monitor = self._sock.get_monitor_socket(_WATCHED)
        self._sock.connect(self.address)

    def _read_monitor(self) -> None:
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshakes += 1
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.auth_failures += 1
                logger.warning("the Producer refused this worker's key (ZAP %s)", event["value"])

    def _close_socket(self) -> None:
        if self._monitor is not None and self._sock is not None:
            self._read_monitor()
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
