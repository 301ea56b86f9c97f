"""Server and client sockets of the Work-API, set up the same way everywhere.

A server endpoint (Producer ROUTER, Collector PULL) gets its own ``zmq.Context`` — ZAP
authentication is per context, so Producer and Collector in one process each run their own
``ThreadAuthenticator`` — a bound on inbound message size, ``linger=0``, and CURVE when keys
are given. ZAP checks a key once, at the handshake; so that a revoked worker already
connected is dropped too, the servers ask :meth:`ServerEndpoint.revoked` of every message.
Binding a non-loopback address without keys is refused (see ``keys.check_bind``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq

from edgeapp.engine.distributed import keys as keymod
from edgeapp.errors import TransportError


class ServerEndpoint:
    """A bound server socket; ``address`` is the real endpoint (``*`` ports resolved)."""

    def __init__(self, kind: int, address: str, *, max_message_bytes: int,
                 keys_dir: str | Path | None = None, insecure: bool = False,
                 options: dict[int, Any] | None = None) -> None:
        server_keys = keymod.load_server_keys(keys_dir) if keys_dir else None
        keymod.check_bind(address, server_keys, insecure)
        self.secure = server_keys is not None
        #: The authorised keys, re-read as they change (None without CURVE).
        self.keyring = keymod.KeyRing(server_keys.authorized) if server_keys else None
        self.context = zmq.Context()
        self._auth: Any = None
        self.socket: zmq.Socket | None = None
        try:
            if self.keyring is not None:
                self._auth = keymod.start_authenticator(self.context, self.keyring)
            sock = self.context.socket(kind)
            self.socket = sock
            sock.linger = 0
            sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
            for option, value in (options or {}).items():
                sock.setsockopt(option, value)
            if server_keys is not None:
                keymod.make_server_secure(sock, server_keys)
            sock.bind(address)
        except zmq.ZMQError as exc:
            self.close()
            raise TransportError(f"cannot bind {address}: {exc}") from exc
        self.address: str = sock.get_string(zmq.LAST_ENDPOINT)

    def user_id(self, frame: zmq.Frame) -> str:
        """The CURVE key (z85) the sender of ``frame`` connected with; "" without CURVE."""
        if not self.secure:
            return ""
        try:
            return str(frame.get("User-Id"))
        except zmq.ZMQError:
            return ""

    def revoked(self, user_id: str) -> bool:
        """True when the sender's key was authorised at its handshake and is not now."""
        return self.keyring is not None and not self.keyring.allowed(user_id)

    def close(self) -> None:
        """Close the socket (linger 0), the authenticator and the context."""
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self.context.term()


def client_socket(context: zmq.Context, kind: int, address: str,
                  client_keys: keymod.ClientKeys | None, connect: bool = True,
                  **options: Any) -> zmq.Socket:
    """A worker-side socket (``linger=0``, CURVE when keys are given), connected unless told."""
    sock = context.socket(kind)
    sock.linger = 0
    for name, value in options.items():
        setattr(sock, name, value)
    if client_keys is not None:
        keymod.make_client_secure(sock, client_keys)
    if connect:
        sock.connect(address)
    return sock
