"""A station as a child process (spawn), and the engine's handle on it.

The child ignores SIGINT (Ctrl+C belongs to the engine, which stops its stations in order);
the first SIGTERM stops it gracefully, a second one ends it at once. Its stdout and stderr —
FFmpeg's and OpenCV's messages about a camera included, which C code writes straight to the
file descriptors — go to ``<data_dir>/logs/station-<name>.log``, never into the terminal's
status line: what the operator must know comes as a ``StationNotice``. The handle sends the
engine's messages from its own thread through a bounded outbox, so a station that stalls can
never block the Collector or the VLM batcher that produce those messages; new stream
parameters wait in a slot of their own (the latest wins) and never wait for outbox room.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from edgeapp.engine.stations.messages import SetParameters, StationNotice, Stop
from edgeapp.engine.stations.settings import StationSettings

logger = logging.getLogger(__name__)

_OUTBOX = 256  # messages to one station at most; detections beyond it are dropped
_CLOSE = object()
_WAKE = object()  # new parameters are waiting


def sigterm_handler(station: Any) -> Callable[[int, Any], None]:
    """A SIGTERM handler for a station process: the first stops the station (it finishes its
    order), a second leaves at once."""
    terminating = threading.Event()

    def on_term(_signum: int, _frame: Any) -> None:
        if terminating.is_set():
            os._exit(1)  # second SIGTERM: leave now
        terminating.set()
        station.stop()
    return on_term


def station_main(settings: StationSettings, conn: Connection) -> None:
    """The station process: run the station until stopped; a crash is told to the engine."""
    from edgeapp.engine.stations.station import Station

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log_problem = _log_to_file(settings)
    station = Station(settings, conn)
    if log_problem:
        station.send(StationNotice("warning", log_problem, settings.name))
    signal.signal(signal.SIGTERM, sigterm_handler(station))
    try:
        station.run()
    except BaseException as exc:
        station.send(StationNotice("error", f"station {settings.name} crashed: {exc!r}",
                                   settings.name))
        raise
    finally:
        conn.close()


def _log_to_file(settings: StationSettings) -> str | None:
    """Point this process's stdout, stderr and logging at the station's log file; the
    problem, in words, if that cannot be done (the output then stays where it was)."""
    from edgeapp.paths import logs_dir

    path = logs_dir(settings.data_dir) / f"station-{settings.name}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        return f"station log {path} cannot be written ({exc}); its messages go to stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format=f"%(asctime)s %(levelname)s {settings.name} %(name)s: "
                               "%(message)s")
    return None


class StationProcess:
    """The engine's handle on one station process: start, post messages, stop, kill, join."""

    def __init__(self, settings: StationSettings) -> None:
        self.settings = settings
        self.name = settings.name
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        self._child_conn: Connection | None = child
        self.process = ctx.Process(target=station_main, args=(settings, child),
                                   name=f"station-{settings.name}", daemon=True)
        self._outbox: queue.Queue[object] = queue.Queue(_OUTBOX)
        self._tx = threading.Thread(target=self._send_loop, name=f"station-{self.name}-tx",
                                    daemon=True)
        self.dropped = 0  # detections dropped because the station did not keep up
        self._parameters: object | None = None  # the newest SetParameters not yet sent
        self._parameters_lock = threading.Lock()

    def start(self) -> None:
        """Spawn the process and the sender thread."""
        self.process.start()
        assert self._child_conn is not None
        self._child_conn.close()  # the child has its own copy; ours would hide its EOF
        self._child_conn = None
        self._tx.start()

    @property
    def sentinel(self) -> int:
        """Becomes ready when the process ends (for ``multiprocessing.connection.wait``)."""
        return self.process.sentinel

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The exit code once ended (negative: killed by that signal)."""
        return self.process.exitcode

    def outbox_size(self) -> int:
        """Messages waiting to be sent to the station."""
        return self._outbox.qsize()

    def post(self, message: object, droppable: bool = False) -> bool:
        """Queue ``message`` for the station; False if it was dropped (outbox full)."""
        try:
            self._outbox.put(message, block=not droppable, timeout=None if droppable else 1.0)
            return True
        except queue.Full:
            self.dropped += droppable
            if not droppable:
                logger.warning("station %s: outbox full, %s lost", self.name,
                               type(message).__name__)
            return False

    def set_parameters(self, message: SetParameters) -> None:
        """Send new stream parameters ahead of the outbox (never blocks; the latest wins)."""
        with self._parameters_lock:
            self._parameters = message
        try:
            self._outbox.put_nowait(_WAKE)
        except queue.Full:
            pass  # the sender is busy with the outbox and sends the parameters first

    def stop(self, finish_order: bool, deadline_s: float, reason: str = "station stopped"
             ) -> None:
        """Ask the station to stop (finishing the order on its counter first, if asked; an
        order cut short ends ``failed`` with ``reason``)."""
        self.post(Stop(finish_order, deadline_s, reason))

    def terminate(self) -> None:
        """SIGTERM: the station stops without finishing its order."""
        if self.process.is_alive():
            self.process.terminate()

    def kill(self) -> None:
        """SIGKILL, for a station that did not stop."""
        if self.process.is_alive():
            self.process.kill()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the process; True when it has ended."""
        self.process.join(timeout)
        return self.process.exitcode is not None

    def close(self) -> None:
        """After the process ended: stop the sender thread and close the pipe."""
        try:
            self._outbox.put_nowait(_CLOSE)
        except queue.Full:
            while True:  # the station is gone: what is waiting will never be read
                try:
                    self._outbox.get_nowait()
                except queue.Empty:
                    break
            self._outbox.put_nowait(_CLOSE)
        self._tx.join(5.0)
        self.conn.close()
        self.process.close()

    def _send_loop(self) -> None:
        broken = False
        while True:
            message = self._outbox.get()
            if message is _CLOSE:
                return
            with self._parameters_lock:
                parameters, self._parameters = self._parameters, None
            for item in (parameters, message):
                if broken or item is None or item is _WAKE:
                    continue
                try:
                    self.conn.send(item)
                except (OSError, ValueError):
                    broken = True  # the station died; the engine sees it by the sentinel
