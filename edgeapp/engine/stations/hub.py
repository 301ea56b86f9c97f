"""The engine's side of its station processes: one thread that reads every station's pipe.

The ``engine-hub`` thread waits on all station pipes and process sentinels at once. It turns
``FrameReady`` notes into Producer submissions (one copy out of the shared-memory ring),
``VlmAsk``s into batcher requests, ``ResultReady`` into stored results, and a station process
that ends unasked into a ``crashed`` state, a notification, and a ``failed`` result for each
order it had in flight. Detections and VLM answers go the other way through each station's
outbox (``StationProcess.post``), from the Collector's and the batcher's threads.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait

import numpy as np

from edgeapp.engine.api import (
    CameraState,
    EngineEvent,
    LatestFrame,
    Notification,
    Severity,
    StationState,
    StationStateChanged,
)
from edgeapp.engine.distributed.collector import DetectionResult
from edgeapp.engine.metrics import LatencyWindow, RateMeter
from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.process import StationProcess
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings

logger = logging.getLogger(__name__)

SubmitFrame = Callable[[str, int, np.ndarray, float], bool]
AskVlm = Callable[[str, m.VlmAsk, list[np.ndarray], Callable[[m.VlmReply], object]], None]


class StationLink:
    """What the engine knows about one station process."""

    def __init__(self, proc: StationProcess) -> None:
        self.proc = proc
        self.name = proc.name
        self.lock = threading.Lock()  # rings: replaced by the hub, read by latest_frame
        self.rings: dict[str, FrameRing] = {}
        self.state, self.reason = StationState.STARTING, "process starting"
        self.camera: CameraState | None = None
        self.busy = False
        self.order_id: str | None = None
        self.order_started: float | None = None
        self.asks: dict[str, str | None] = {}  # request_id -> order id, until its result
        self.stats: m.StationStats | None = None
        self.fps_in: float | None = None
        self._last_stats: tuple[float, int] | None = None
        self.detected = RateMeter()
        self.frame_latency = LatencyWindow()
        self.latest: tuple[int, np.ndarray] | None = None
        self.frames_lost = 0  # slots overwritten before the engine could copy them
        self.frames_refused = 0  # the Producer's queue was full
        self.frames_processed = 0  # detections came back
        self.stopping = False
        self.ended = False
        self.restarts = 0

    def take_stats(self, stats: m.StationStats) -> None:
        now = time.monotonic()
        if self._last_stats is not None and now > self._last_stats[0]:
            self.fps_in = (stats.frames_out - self._last_stats[1]) / (now - self._last_stats[0])
        self._last_stats = (now, stats.frames_out)
        self.stats = stats


class StationHub:
    """Starts station processes and serves them on the ``engine-hub`` thread."""

    def __init__(self, *, submit_frame: SubmitFrame, ask_vlm: AskVlm,
                 on_result: Callable[[OrderResult], None],
                 publish: Callable[[EngineEvent], None],
                 expected: Callable[[str], dict[str, int] | None]) -> None:
        self._submit = submit_frame
        self._expected = expected
        self._ask = ask_vlm
        self._on_result = on_result
        self._publish = publish
        self._links: dict[str, StationLink] = {}
        self._lock = threading.Lock()
        self._add_lock = threading.Lock()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-hub", daemon=True)

    # ── control (any thread) ─────────────────────────────────────────────────────────────

    def start(self) -> None:
        """Start the hub thread (stations are added with ``add``)."""
        self._thread.start()

    def add(self, settings: StationSettings) -> None:
        """Spawn a station process (the hub serves it once it has started)."""
        with self._add_lock:  # one add at a time: the name stays free until it is ours
            with self._lock:
                if settings.name in self._links and not self._links[settings.name].ended:
                    raise ValueError(f"station {settings.name} already runs")
            proc = StationProcess(settings)
            proc.start()
            with self._lock:
                self._links[settings.name] = StationLink(proc)

    def links(self) -> list[StationLink]:
        """Every station, running or ended."""
        with self._lock:
            return list(self._links.values())

    def running(self) -> list[StationLink]:
        """Stations whose process has not ended."""
        return [link for link in self.links() if not link.ended]

    def post_all(self, message: object) -> None:
        """Send ``message`` to every running station."""
        for link in self.running():
            link.proc.post(message)

    def deliver(self, result: DetectionResult) -> None:
        """Route a frame's detections to its station (Collector thread)."""
        with self._lock:
            link = self._links.get(result.stream_key)
        if link is None or link.ended:
            return
        link.latest = (result.seq, result.detections)
        link.detected.add()
        link.frames_processed += 1
        capture_ts = result.meta.get("capture_ts")
        if isinstance(capture_ts, float):
            link.frame_latency.add(result.meta.get("recv_ts", time.time()) - capture_ts)
        link.proc.post(m.Detections(result.seq, result.detections), droppable=True)

    def latest_frame(self, station: str, unless_seq: int | None = None) -> LatestFrame | None:
        """The newest frame of ``station`` with the newest detections (copies); None also
        when that frame's seq is ``unless_seq`` (the caller has it: a display polls without
        copying)."""
        with self._lock:
            link = self._links.get(station)
        if link is None:
            return None
        with link.lock:
            ring = link.rings.get("live")
            if ring is None:
                return None
            latest = link.latest
            if unless_seq is not None:
                shown = (latest[0] if latest is not None and ring.holds(latest[0])
                         else ring.newest_seq())
                if shown == unless_seq:
                    return None
            frame = ring.find(latest[0]) if latest is not None else None
            frame = frame or ring.newest()
        if frame is None:
            return None
        dets_seq, dets = latest if latest is not None else (None, None)
        return LatestFrame(station, frame.seq, frame.capture_ts, frame.image, dets, dets_seq)

    def stop_stations(self, finish_orders: bool, timeout: float) -> None:
        """Stop every station: ask, wait up to ``timeout`` s, then SIGTERM and SIGKILL."""
        deadline = time.monotonic() + timeout
        for link in self.running():
            link.stopping = True
            self._set_state(link, StationState.DRAINING, "stopping")
            # The station's own drain ends a little before ours, so its results still come.
            link.proc.stop(finish_orders, max(0.0, timeout - 1.5))
        self._wait_ended(deadline)
        self._hurry.clear()  # from here on the waits are short and bounded anyway
        for sig_name, grace in (("terminate", 2.0), ("kill", 3.0)):
            left = self.running()
            if not left:
                return
            for link in left:
                logger.warning("station %s did not stop in time: %s", link.name, sig_name)
                getattr(link.proc, sig_name)()
            self._wait_ended(time.monotonic() + grace)

    def hurry(self) -> None:
        """Stop waiting for stations to finish their orders (safe in a signal handler)."""
        self._hurry.set()

    def stop(self) -> None:
        """End the hub thread (after the stations ended)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the hub thread; True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _wait_ended(self, deadline: float) -> None:
        while self.running() and time.monotonic() < deadline and not self._hurry.is_set():
            time.sleep(0.05)

    # ── the hub thread ───────────────────────────────────────────────────────────────────

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception as exc:  # the hub must keep serving the other stations
                logger.exception("engine hub failed")
                self._publish(Notification(Severity.ERROR, f"station hub: {exc!r}", "stations"))
                self._stop.wait(0.2)
        for link in self.links():
            if not link.ended:
                self._reap(link)

    def _serve(self) -> None:
        """Wait up to 0.2 s for station messages and ended processes; handle them."""
        live = self.running()
        if not live:
            self._stop.wait(0.1)
            return
        by_conn = {link.proc.conn: link for link in live}
        by_sentinel = {link.proc.sentinel: link for link in live}
        for ready in wait([*by_conn, *by_sentinel], timeout=0.2):
            try:
                if ready in by_conn:
                    self._read(by_conn[ready])
                else:
                    self._reap(by_sentinel[ready])  # type: ignore[index]
            except Exception as exc:  # one bad message must not end the hub
                logger.exception("engine hub failed on a station message")
                self._publish(Notification(Severity.ERROR, f"station hub: {exc!r}", "stations"))

    def _read(self, link: StationLink) -> None:
        try:
            message = link.proc.conn.recv()
        except (EOFError, OSError):
            return  # the process is ending: its sentinel tells the rest
        self._handle(link, message)

    def _handle(self, link: StationLink, message: object) -> None:
        if isinstance(message, m.FrameReady):
            with link.lock:
                ring = link.rings.get("live")
                frame = ring.read(message.slot, message.seq) if ring is not None else None
            if frame is None:
                link.frames_lost += 1
            elif not self._submit(link.name, message.seq, frame.image, message.capture_ts):
                link.frames_refused += 1
        elif isinstance(message, m.VlmAsk):
            self._forward_ask(link, message)
        elif isinstance(message, m.ResultReady):
            result = OrderResult.from_dict(message.result)
            link.asks.pop(result.result_id, None)
            self._on_result(result)
        elif isinstance(message, m.OrderUpdate):
            self._order_update(link, message)
        elif isinstance(message, m.StationStats):
            link.take_stats(message)
        elif isinstance(message, m.SourceStateChanged):
            self._set_camera(link, CameraState(message.state), message.reason)
        elif isinstance(message, m.RingOpened):
            ring = FrameRing.attach(message.spec)
            with link.lock:
                old = link.rings.get(message.kind)
                link.rings[message.kind] = ring
            if old is not None:
                old.close()
                old.unlink()
        elif isinstance(message, m.StationNotice):
            self._publish(Notification(Severity[message.severity.upper()], message.text,
                                       link.name))

    def _forward_ask(self, link: StationLink, ask: m.VlmAsk) -> None:
        link.asks[ask.request_id] = ask.order_id
        with link.lock:
            ring = link.rings.get("order")
            frames = [ring.read(slot, seq) if ring is not None else None
                      for slot, seq in zip(ask.slots, ask.seqs, strict=True)]
        if any(f is None for f in frames):
            link.proc.post(m.VlmReply(ask.request_id, None, "order frames lost before the "
                                                             "VLM was asked"))
            return
        self._ask(link.name, ask, [f.image for f in frames if f is not None],
                  lambda reply: link.proc.post(reply))

    def _order_update(self, link: StationLink, update: m.OrderUpdate) -> None:
        link.busy, link.order_started = update.busy, update.started_ts
        new_id = update.order_id if update.busy else None
        if new_id is not None and new_id != link.order_id:
            others = [o.name for o in self.running()
                      if o is not link and o.busy and o.order_id == new_id]
            if others:
                self._publish(Notification(
                    Severity.WARNING, f"order {new_id} is on the counter at {link.name} and at "
                                      f"{', '.join(others)}: both are checked, check the "
                                      "tickets", link.name))
        link.order_id = new_id

    def _set_state(self, link: StationLink, new: StationState, reason: str) -> None:
        """Move ``link`` to lifecycle state ``new`` (an allowed transition) and say so."""
        old = link.state
        if old is new:
            return
        link.state, link.reason = old.check(new), reason
        self._publish(StationStateChanged(link.name, old, new, link.camera, reason))

    def _set_camera(self, link: StationLink, camera: CameraState, reason: str) -> None:
        """The camera reported ``camera`` (a starting station now runs); say so."""
        if camera is link.camera:
            return
        old = link.state
        link.camera, link.reason = camera, reason
        if old is StationState.STARTING:
            link.state = old.check(StationState.RUNNING)
        self._publish(StationStateChanged(link.name, old, link.state, camera, reason))

    def _reap(self, link: StationLink) -> None:
        """The process ended: read what it said last, then account for what it left."""
        conn = link.proc.conn
        try:
            while conn.poll(0):
                self._handle(link, conn.recv())
        except (EOFError, OSError):
            pass
        if not link.proc.join(1.0):
            link.proc.kill()  # only the engine's own end gets here with a live station
            link.proc.join(5.0)
        code = link.proc.exitcode
        crashed = code != 0 or not link.stopping
        reason = _exit_reason(code) if crashed else "stopped"
        if crashed:
            self._publish(Notification(Severity.ERROR, f"station {link.name} {reason}",
                                       link.name))
            self._fail_in_flight(link, reason)
        self._set_state(link, StationState.CRASHED if crashed else StationState.STOPPED, reason)
        with self._lock:
            link.ended = True
        with link.lock:
            for ring in link.rings.values():
                ring.close()
                ring.unlink()
            link.rings.clear()
        link.proc.close()

    def _fail_in_flight(self, link: StationLink, reason: str) -> None:
        """Every order the dead station held becomes ``failed`` with ``reason``."""
        orders = [(f"{link.name}-lost-{rid}", oid) for rid, oid in link.asks.items()]
        # An order that was asked about but not yet told "idle" is already in the asks.
        if link.busy and (link.order_id is None or link.order_id not in link.asks.values()):
            orders.append((f"{link.name}-lost-{time.time_ns()}", link.order_id))
        link.asks.clear()
        link.busy = False
        for result_id, order_id in orders:
            self._on_result(OrderResult(
                order_id=order_id or "", station_id=link.name,
                expected_items=(self._expected(order_id) if order_id else None) or {},
                detected_items={}, status=OrderStatus.FAILED,
                reason=f"station {reason} while the order was in progress",
                result_id=result_id))


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "process did not end"
    if code < 0:
        try:
            return f"crashed (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"crashed (exit code {code})" if code else "ended by itself"
