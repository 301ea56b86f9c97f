"""The station pool: starts, drains, restarts and stops station processes.

One thread (``engine-stations``) owns every station's lifecycle, as the state machine of
:class:`~edgeapp.engine.api.StationState`, and serves their channels: it waits on all of them
at once (and on a waker for the operator's calls), hands each message to the router, and
notices a station that ended. Each step is a ``StationStateChanged`` event.

- ``add`` / ``remove`` return at once (a name in use, or unknown, is an ``InputError`` then);
  the pool thread does the work and the events tell the outcome.
- A removed station DRAINS: it finishes the order on its counter (its result is stored)
  and then ends; after ``drain_s`` its order is cut short (``failed: station removed``), and
  a station that still runs a few seconds later is terminated.
- A station that ends unasked has crashed: its in-flight order ends ``failed`` with the
  reason, and it is RESTARTING after a backoff (1, 2, 4 … 30 s) — or CRASHED for good after
  too many crashes in the window (:mod:`edgeapp.engine.stations.supervisor`), with a
  Notification. The local inference workers are supervised on the same thread, the same way.
"""

from __future__ import annotations

import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from edgeapp.config import StationConfig
from edgeapp.engine.api import (
    CameraState,
    EngineEvent,
    Notification,
    Severity,
    StationState,
    StationStateChanged,
)
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.channel import PipeChannel, StationChannel
from edgeapp.engine.stations.record import StationRecord
from edgeapp.engine.stations.router import StationRouter
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.engine.stations.supervisor import RestartPolicy, WorkerSupervisor
from edgeapp.errors import InputError

logger = logging.getLogger(__name__)

_S = StationState
_TICK_S = 0.2  # the longest the pool thread waits between looks at its timers
_KILL_GRACE_S = 3.0  # a drained station still running this long after its bound is ended

ChannelFactory = Callable[[StationSettings], StationChannel]


class StationPool:
    """Every station's lifecycle, on the ``engine-stations`` thread."""

    def __init__(self, *, settings_for: Callable[[StationConfig], StationSettings],
                 router: StationRouter, publish: Callable[[EngineEvent], None],
                 policy: RestartPolicy | None = None, drain_s: float = 20.0,
                 channel: ChannelFactory = PipeChannel) -> None:
        self._settings_for = settings_for
        self._router = router
        self._publish = publish
        self._policy = policy or RestartPolicy()
        self._drain_s = drain_s
        self._make_channel = channel
        self._records: dict[str, StationRecord] = {}
        self._lock = threading.Lock()
        self._claimed: list[str] = []  # stations running or about to, in the order added
        self._removing: set[str] = set()
        self._commands: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._workers: WorkerSupervisor | None = None
        self._closing = False
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-stations", daemon=True)

    # ── any thread ───────────────────────────────────────────────────────────────────────

    def start(self, workers: WorkerSupervisor | None = None) -> None:
        """Start the pool thread (and supervise ``workers`` on it)."""
        self._workers = workers
        self._thread.start()

    def add(self, config: StationConfig) -> None:
        """Start a station; ``InputError`` at once if its name is in use."""
        with self._lock:
            if config.name in self._claimed:
                raise InputError(f"station {config.name} already runs")
            self._claimed.append(config.name)
        self._command("add", config)

    def remove(self, name: str) -> None:
        """Drain and stop station ``name``; ``InputError`` at once if none by that name
        runs or it is already leaving."""
        with self._lock:
            if name not in self._claimed:
                raise InputError(f"no station {name} is running")
            if name in self._removing:
                raise InputError(f"station {name} is already being removed")
            self._removing.add(name)
        self._command("remove", name)

    def active(self) -> list[str]:
        """Stations running or about to (starting, restarting), not leaving, in order."""
        with self._lock:
            return [n for n in self._claimed if n not in self._removing]

    def get(self, name: str) -> StationRecord | None:
        """The record of station ``name``."""
        with self._lock:
            return self._records.get(name)

    def records(self) -> list[StationRecord]:
        """Every station the pool has known, running or ended."""
        with self._lock:
            return list(self._records.values())

    def set_parameters(self, message: m.SetParameters) -> None:
        """New pacer parameters to every running station (never blocks)."""
        for record in self.records():
            channel = record.channel
            if channel is not None:
                channel.set_parameters(message)

    def stop_stations(self, finish_orders: bool, timeout: float) -> None:
        """Stop every station: ask, wait up to ``timeout`` s, then SIGTERM and SIGKILL."""
        deadline = time.monotonic() + timeout
        self._closing = True
        # The station's own drain ends a little before ours, so its results still come.
        self._command("stop_all", finish_orders, max(0.0, timeout - 1.5))
        self._wait_ended(deadline)
        self._hurry.clear()  # from here on the waits are short and bounded anyway
        for sig_name, grace in (("terminate", 2.0), ("kill", 3.0)):
            left = [r for r in self.records() if r.channel is not None]
            if not left:
                return
            for record in left:
                logger.warning("station %s did not stop in time: %s", record.name, sig_name)
                channel = record.channel
                if channel is not None:
                    getattr(channel, sig_name)()
            self._wait_ended(time.monotonic() + grace)

    def hurry(self) -> None:
        """Stop waiting for stations to finish their orders (safe in a signal handler)."""
        self._hurry.set()

    def stop(self) -> None:
        """End the pool thread (after the stations ended)."""
        self._stop.set()
        self._wake()
        if self._thread.ident is None:  # never started: nobody else closes the waker
            self._wake_r.close()
            self._wake_w.close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the pool thread; True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _command(self, *command: Any) -> None:
        self._commands.put(command)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass  # full (the thread is awake anyway) or closed (it has ended)

    def _wait_ended(self, deadline: float) -> None:
        while any(r.channel is not None for r in self.records()) \
                and time.monotonic() < deadline and not self._hurry.is_set():
            time.sleep(0.05)

    # ── the pool thread ──────────────────────────────────────────────────────────────────

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._serve()
                except Exception as exc:  # the pool must keep serving the other stations
                    logger.exception("station pool failed")
                    self._notify(Severity.ERROR, f"station pool: {exc!r}", "stations")
                    self._stop.wait(0.2)
            for record in self.records():
                if record.channel is not None:
                    self._reap(record)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _serve(self) -> None:
        """Commands, timers, then up to one tick of waiting on the stations."""
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            getattr(self, f"_do_{command[0]}")(*command[1:])
        now = time.monotonic()
        self._timers(now)
        if self._workers is not None:
            self._workers.tick(now)
        by_handle: dict[Any, tuple[StationRecord, bool]] = {}
        for record in self.records():
            if record.channel is not None:
                messages, ended = record.channel.handles()
                by_handle[messages] = (record, False)
                by_handle[ended] = (record, True)
        for ready in wait([*by_handle, self._wake_r], timeout=self._timeout(now)):
            if ready is self._wake_r:
                self._wake_r.recv(4096)
                continue
            record, ended = by_handle[ready]
            if record.channel is None:
                continue  # reaped through its other handle in this round
            try:
                if ended:
                    self._reap(record)
                else:
                    for message in record.channel.receive():
                        self._dispatch(record, message)
            except Exception as exc:  # one bad message must not end the pool
                logger.exception("station pool failed on a message of %s", record.name)
                self._notify(Severity.ERROR, f"station pool: {exc!r}", record.name)

    def _timeout(self, now: float) -> float:
        due = [t for r in self.records() if (t := _next_due(r, now)) is not None]
        if self._workers is not None and (w := self._workers.next_due()) is not None:
            due.append(w)
        return max(0.0, min([_TICK_S, *(t - now for t in due)]))

    def _dispatch(self, record: StationRecord, message: object) -> None:
        if isinstance(message, m.SourceStateChanged):
            self._camera(record, CameraState(message.state), message.reason)
        else:
            self._router.handle(record, message)

    def _timers(self, now: float) -> None:
        for record in self.records():
            if record.state is _S.RESTARTING and record.restart_at is not None \
                    and now >= record.restart_at:
                record.restart_at = None
                self._spawn(record, f"restart {record.restarts + 1} after a crash")
                record.restarts += 1
            elif record.state is _S.DRAINING and record.drain_until is not None \
                    and record.channel is not None and now >= record.drain_until:
                overdue = now - record.drain_until
                if overdue >= 2 * _KILL_GRACE_S:
                    record.channel.kill()
                    record.drain_until = None
                elif overdue >= _KILL_GRACE_S and not record.terminated:
                    record.channel.terminate()  # once: a second SIGTERM is a hard end
                    record.terminated = True

    # ── commands ─────────────────────────────────────────────────────────────────────────

    def _do_add(self, config: StationConfig) -> None:
        with self._lock:
            record = self._records.get(config.name)
            if record is None:
                record = self._records[config.name] = StationRecord(config, self._policy)
        record.config = config
        record.crashes = type(record.crashes)(self._policy)  # the operator starts it afresh
        self._spawn(record, "waiting for the remote station (edgeapp --station "
                            f"{config.name})" if config.remote else "process starting")

    def _do_remove(self, name: str) -> None:
        record = self.get(name)
        if record is None:
            return
        if record.channel is None:  # waiting to restart: nothing to drain
            self._set_state(record, _S.STOPPED, "removed")
            return
        self._drain(record, True, self._drain_s, "station removed")

    def _do_stop_all(self, finish_orders: bool, deadline_s: float) -> None:
        for record in self.records():
            if record.channel is None:
                if record.state is _S.RESTARTING:
                    self._set_state(record, _S.STOPPED, "engine stopped")
            elif record.state is not _S.DRAINING:
                self._drain(record, finish_orders, deadline_s, "station stopped")
            else:  # already leaving: keep its bound, or cut it short now
                record.channel.stop(finish_orders, deadline_s if finish_orders else 0.0,
                                    record.stop_reason)

    def _drain(self, record: StationRecord, finish: bool, deadline_s: float,
               reason: str) -> None:
        assert record.channel is not None
        record.stopping, record.stop_reason = True, reason
        record.drain_until = time.monotonic() + deadline_s
        record.channel.stop(finish, deadline_s, reason)
        self._set_state(record, _S.DRAINING, f"{reason}: finishing the order on the counter"
                        if finish else reason)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    def _spawn(self, record: StationRecord, reason: str) -> None:
        channel = self._make_channel(self._settings_for(record.config))
        record.new_process(channel)
        self._set_state(record, _S.STARTING, reason)
        try:
            channel.start()
        except Exception as exc:  # could not even spawn: a crash like any other
            logger.exception("station %s did not start", record.name)
            record.process_ended()
            self._crashed(record, f"did not start ({exc!r})")

    def _camera(self, record: StationRecord, camera: CameraState, reason: str) -> None:
        """The camera reported ``camera`` (a starting station now runs); say so."""
        if camera is record.camera:
            return
        old = record.state
        record.camera, record.reason = camera, reason
        if old is _S.STARTING:
            record.state = old.check(_S.RUNNING)
        self._publish(StationStateChanged(record.name, old, record.state, camera, reason))

    def _reap(self, record: StationRecord) -> None:
        """The process ended: read what it said last, then account for what it left."""
        channel = record.channel
        assert channel is not None
        for message in channel.receive():
            self._dispatch(record, message)
        if not channel.join(1.0):
            channel.kill()  # only the engine's own end gets here with a live station
            channel.join(5.0)
        code = channel.exitcode
        channel.close()
        record.process_ended()
        if record.stopping:
            if code != 0:  # cut short: what it held ends as the stop says
                self._router.fail_in_flight(record, record.stop_reason)
            self._set_state(record, _S.STOPPED, "removed" if record.stop_reason ==
                            "station removed" else "stopped")
            return
        if channel.remote:
            self._offline(record, getattr(channel, "end_reason", None) or _exit_reason(code))
            return
        self._crashed(record, _exit_reason(code))

    def _offline(self, record: StationRecord, reason: str) -> None:
        """A remote station left or went silent: its orders fail, and it is OFFLINE (the
        engine cannot restart it) until it speaks again."""
        self._notify(Severity.ERROR, f"station {record.name} {reason}", record.name)
        self._router.fail_in_flight(record, f"station {reason}")
        self._set_state(record, _S.OFFLINE, reason)

    def _crashed(self, record: StationRecord, reason: str) -> None:
        """Fail its orders; restart it after a backoff, or give it up."""
        self._notify(Severity.ERROR, f"station {record.name} {reason}", record.name)
        self._router.fail_in_flight(record, f"station {reason}")
        delay = None if self._closing else record.crashes.crashed(time.monotonic())
        if delay is None:
            why = "engine stopping" if self._closing else (
                f"{record.crashes.count} crashes in {self._policy.window_s:.0f} s")
            self._set_state(record, _S.CRASHED, f"{reason}; not restarted ({why})")
            if not self._closing:
                self._notify(Severity.ERROR, f"station {record.name} crashed "
                                             f"{record.crashes.count} times in "
                                             f"{self._policy.window_s:.0f} s: it stays down "
                                             "until it is added again", record.name)
            return
        record.restart_at = time.monotonic() + delay
        self._set_state(record, _S.RESTARTING, f"{reason}; restart in {delay:.0f} s")

    def _set_state(self, record: StationRecord, new: StationState, reason: str) -> None:
        """Move ``record`` to ``new`` (an allowed transition) and say so."""
        old = record.state
        record.state, record.reason = old.check(new), reason
        if new in (_S.STOPPED, _S.CRASHED, _S.OFFLINE):
            with self._lock:
                if record.name in self._claimed:
                    self._claimed.remove(record.name)
                self._removing.discard(record.name)
        self._publish(StationStateChanged(record.name, old, new, record.camera, reason))

    def _notify(self, severity: Severity, text: str, part: str) -> None:
        self._publish(Notification(severity, text, part))


def _next_due(record: StationRecord, now: float) -> float | None:
    """When the pool must next act on ``record`` by itself (see ``_timers``)."""
    if record.state is _S.RESTARTING:
        return record.restart_at
    if record.state is _S.DRAINING and record.drain_until is not None:
        overdue = now - record.drain_until
        return record.drain_until + (_KILL_GRACE_S if overdue < _KILL_GRACE_S
                                     else 2 * _KILL_GRACE_S)
    return None


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "process did not end"
    if code < 0:
        try:
            return f"crashed (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"crashed (exit code {code})" if code else "ended by itself"
