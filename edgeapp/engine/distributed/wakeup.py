"""A thread-safe way to wake a ``zmq.Poller`` loop from other threads, without a ZeroMQ socket.

ZeroMQ sockets are not thread-safe, so a submitting thread cannot poke the socket-owning thread
through a socket of its own without one socket per thread. A ``socketpair`` is: any thread may
``wake()``, and the loop polls the read end's file descriptor next to its ZeroMQ sockets.
"""

from __future__ import annotations

import socket


class Waker:
    """Write end for any thread, read end (``fileno``) for one poller."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        """Descriptor to register with ``zmq.Poller`` for POLLIN."""
        return self._reader.fileno()

    def wake(self) -> None:
        """Make the poller return; never blocks (a full pipe already means 'awake')."""
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def drain(self) -> None:
        """Consume pending wake-ups (call when the poller reports the descriptor)."""
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Close both ends."""
        self._reader.close()
        self._writer.close()
