"""The worker's REQ connection to the Producer, reliable the Lazy Pirate way (zguide ch. 4).

Every request waits at most ``timeout_s`` for its reply. When none comes, the socket is closed
with ``linger=0`` and a fresh one is opened (a REQ socket that lost its reply is stuck
otherwise); the caller then registers again. A socket monitor watches every handshake, so a
worker that cannot get in says why within a moment instead of retrying forever:
``handshake_error`` names what failed and what to check (no keys against a CURVE Producer, keys
against a plain one, a key the Producer refuses or revoked, the wrong ``server.key``).
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
#: A CURVE hello the server cannot open (the wrong server key) only shows as handshakes that
#: fail without detail, one per reconnect; this many in a row, and none succeeded, is that.
NO_DETAIL_FAILURES = 3


class ProducerLink:
    """Send one request, get its reply or ``None`` after ``timeout_s`` (then reconnect)."""

    def __init__(self, context: zmq.Context, address: str, client_keys: ClientKeys | None,
                 timeout_s: float, max_message_bytes: int = 1 << 30) -> None:
        self.context, self.address, self.client_keys = context, address, client_keys
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self.reconnects = 0
        self.handshakes = 0
        #: Why the handshake failed on the current connection, with what to check; None while
        #: nothing failed (or once one succeeded).
        self.handshake_error: str | None = None
        self._no_detail = 0
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
            if self.handshake_error is not None:
                break  # it will fail the same way again: waiting longer will not help
        error = self.handshake_error
        self.reset()
        self.handshake_error = error  # what the caller needs to know, until one succeeds
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
        self._monitor = self._sock.get_monitor_socket(_WATCHED)  # before it can happen
        self.handshake_error, self._no_detail = None, 0
        self._sock.connect(self.address)

    def _read_monitor(self) -> None:
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            kind, value = event["event"], event["value"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshakes += 1
                self.handshake_error, self._no_detail = None, 0
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.handshake_error = (
                    f"the Producer at {self.address} refused this worker's key (ZAP {value}): "
                    "it is not authorised there, or was revoked; on the engine's machine run "
                    "'edgeapp keys add-worker NAME' and start this worker with --keys "
                    "pointing to the folder it prints")
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                self.handshake_error = self._protocol_error(value)
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self._no_detail += 1
                if self._no_detail >= NO_DETAIL_FAILURES:
                    self.handshake_error = self._no_detail_error()
            if self.handshake_error is not None:
                logger.debug("handshake failed: %s", self.handshake_error)

    def _protocol_error(self, code: int) -> str:
        if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH and self.client_keys is None:
            return (f"the Producer at {self.address} requires CURVE keys and this worker has "
                    "none: start it with --keys DIR, the folder 'edgeapp keys add-worker NAME' "
                    "printed on the engine's machine")
        if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return (f"this worker has CURVE keys (--keys) and the Producer at {self.address} "
                    "uses no keys: start the worker without --keys, or turn keys on at the "
                    "engine (distributed.keys_dir)")
        return (f"the handshake with {self.address} failed (ZMTP protocol error {code:#x}): is "
                "this the address of an edgeapp Producer (distributed.producer_bind)?")

    def _no_detail_error(self) -> str:
        if self.client_keys is not None:
            return (f"the Producer at {self.address} did not complete the CURVE handshake: the "
                    "server.key in this worker's --keys folder is most likely not that "
                    "engine's key (copy the folder 'edgeapp keys add-worker NAME' printed there "
                    "again), or that Producer uses no keys (start the worker without --keys)")
        return (f"the Producer at {self.address} did not complete the handshake: it most likely "
                "requires CURVE keys, and this worker has none: start it with --keys DIR, the "
                "folder 'edgeapp keys add-worker NAME' printed on the engine's machine (or "
                "check that this is the address of an edgeapp Producer)")

    def _close_socket(self) -> None:
        if self._monitor is not None and self._sock is not None:
            self._read_monitor()
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
