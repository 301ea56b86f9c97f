"""The engine's line to one station: messages both ways, frames out of the station's rings.

:class:`StationChannel` is the seam where a queue backend plugs in: the pool and the router
speak only through it. :class:`PipeChannel` is the local backend (``queue_backend:
multiprocessing``): a spawned station process, a duplex pipe for the small messages, and
shared-memory rings for the frames (no frame is pickled). A Redis backend (stations on other
machines) implements the same protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.process import StationProcess
from edgeapp.engine.stations.ring import FrameRing, SlotFrame
from edgeapp.engine.stations.settings import StationSettings

LIVE, ORDER = "live", "order"  # the two rings: paced frames, and the frames an order keeps


class StationChannel(Protocol):
    """One station, as the pool and the router see it."""

    name: str
    remote: bool  # the station runs on another machine

    @property
    def pid(self) -> int | None:
        """The station's process id (None: not local, or ended)."""

    @property
    def exitcode(self) -> int | None:
        """How the station ended (negative: killed by that signal); None while it runs."""

    @property
    def dropped(self) -> int:
        """Detections dropped because the station did not keep up."""

    def start(self) -> None:
        """Start the station."""

    def handles(self) -> tuple[object, object]:
        """(ready when a message waits, ready when the station ended), for
        ``multiprocessing.connection.wait``."""

    def receive(self) -> Iterator[object]:
        """The messages waiting now (never blocks; ends at a closed line)."""

    def post(self, message: object, droppable: bool = False) -> bool:
        """Queue ``message`` for the station; False if it was dropped."""

    def set_parameters(self, message: m.SetParameters) -> None:
        """New stream parameters, ahead of other messages (never blocks; latest wins)."""

    def frame(self, ring: str, slot: int, seq: int | None = None) -> SlotFrame | None:
        """A copy of frame ``seq`` in ``slot`` of ``ring``; None when it is gone."""

    def newest(self, prefer_seq: int | None) -> SlotFrame | None:
        """A copy of live frame ``prefer_seq`` if still held, else of the newest one."""

    def newest_seq(self, prefer_seq: int | None) -> int | None:
        """The seq :meth:`newest` would return now (no copy)."""

    def stop(self, finish_order: bool, deadline_s: float, reason: str) -> None:
        """Ask the station to end (first finishing the order on its counter, if asked)."""

    def terminate(self) -> None:
        """End it now without finishing its order."""

    def kill(self) -> None:
        """End it now, whatever it does."""

    def join(self, timeout: float | None = None) -> bool:
        """Wait for its end; True when it has ended."""

    def close(self) -> None:
        """After its end: release the line and the rings."""


class PipeChannel:
    """A local station process: a pipe for messages, shared-memory rings for frames."""

    remote = False

    def __init__(self, settings: StationSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self._proc = StationProcess(settings)
        self._rings: dict[str, FrameRing] = {}
        self._lock = threading.Lock()  # rings: replaced on the pool thread, read by clients

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.process.pid if self._proc.exitcode is None else None

    @property
    def exitcode(self) -> int | None:
        """The process's exit code once it ended."""
        return self._proc.exitcode

    @property
    def dropped(self) -> int:
        """Detections dropped (outbox full)."""
        return self._proc.dropped

    def start(self) -> None:
        """Spawn the process."""
        self._proc.start()

    def handles(self) -> tuple[object, object]:
        """(the pipe, the process sentinel)."""
        return self._proc.conn, self._proc.sentinel

    def receive(self) -> Iterator[object]:
        """Messages waiting in the pipe; ring announcements are handled here."""
        conn = self._proc.conn
        try:
            while conn.poll(0):
                message = conn.recv()
                if isinstance(message, m.RingOpened):
                    self._attach(message)
                else:
                    yield message
        except (EOFError, OSError):
            return  # the process is ending: its sentinel tells the rest

    def post(self, message: object, droppable: bool = False) -> bool:
        """Through the outbox (see ``StationProcess.post``)."""
        return self._proc.post(message, droppable)

    def set_parameters(self, message: m.SetParameters) -> None:
        """Ahead of the outbox."""
        self._proc.set_parameters(message)

    def frame(self, ring: str, slot: int, seq: int | None = None) -> SlotFrame | None:
        """A copy out of shared memory."""
        with self._lock:
            r = self._rings.get(ring)
            return r.read(slot, seq) if r is not None else None

    def newest(self, prefer_seq: int | None) -> SlotFrame | None:
        """The live frame ``prefer_seq`` (the newest with detections) or the newest."""
        with self._lock:
            r = self._rings.get(LIVE)
            if r is None:
                return None
            frame = r.find(prefer_seq) if prefer_seq is not None else None
            return frame or r.newest()

    def newest_seq(self, prefer_seq: int | None) -> int | None:
        """Without copying."""
        with self._lock:
            r = self._rings.get(LIVE)
            if r is None:
                return None
            return prefer_seq if prefer_seq is not None and r.holds(prefer_seq) \
                else r.newest_seq()

    def stop(self, finish_order: bool, deadline_s: float, reason: str) -> None:
        """A Stop message through the outbox."""
        self._proc.stop(finish_order, deadline_s, reason)

    def terminate(self) -> None:
        """SIGTERM."""
        self._proc.terminate()

    def kill(self) -> None:
        """SIGKILL."""
        self._proc.kill()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the process."""
        return self._proc.join(timeout)

    def close(self) -> None:
        """Unlink the rings, stop the sender thread, close the pipe."""
        with self._lock:
            for ring in self._rings.values():
                ring.close()
                ring.unlink()
            self._rings.clear()
        self._proc.close()

    def _attach(self, opened: m.RingOpened) -> None:
        ring = FrameRing.attach(opened.spec)
        with self._lock:
            old, self._rings[opened.kind] = self._rings.get(opened.kind), ring
        if old is not None:
            old.close()
            old.unlink()
