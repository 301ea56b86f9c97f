"""One camera station's main loop: camera → frame ring → (engine) → detections → orders.

``Station(settings, conn).run()`` is the whole life of a station process, and can be called
in-process (a thread and a ``multiprocessing.Pipe``) for tests. Threads here: the camera
source's own thread writes paced frames into the live ring and tells the engine; the loop
thread reads the engine's messages (detections in frame order, VLM answers, parameters,
stop), runs the order tracker (with the order-ID reader) and the order flow.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.tracker import CounterState, OrderSegment, OrderTracker
from edgeapp.engine.sources.factory import open_source
from edgeapp.engine.sources.frame import Frame, SourceState
from edgeapp.engine.stations.messages import (
    Detections,
    FrameReady,
    OrderUpdate,
    RingOpened,
    SetParameters,
    SourceStateChanged,
    StationNotice,
    StationStats,
    Stop,
    VlmReply,
)
from edgeapp.engine.stations.order_flow import OrderFlow
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings

logger = logging.getLogger(__name__)

_POLL_S = 0.1  # how often the loop looks at its stop flag and timers when no message comes
# After a file ends, the detections of its last frames may still be on their way (the workers'
# in-flight window holds a frame up to ~0.5 s): the order on the counter waits this long for
# them, in case they show it ending, then fails as "source ended".
_END_GRACE_S = 1.0
# Frames of truth kept to find which order a segment was (a few orders' worth at 30 fps).
_TRUTH_FRAMES = 2048


class Station:
    """A station's camera, frame ring, order tracker and order flow; ``run()`` until stopped."""

    def __init__(self, settings: StationSettings, conn: Connection) -> None:
        self.settings = settings
        self._conn = conn
        self._send_lock = threading.Lock()
        self._stop = threading.Event()  # set by a signal handler or a Stop message
        self._finish_order = False
        self._stop_reason = "station stopped"
        self._drain_deadline = float("inf")
        self._fps_level = settings.fps_level
        self._camera_closed = False
        self._ring: FrameRing | None = None
        self._slot = 0
        self._held: collections.OrderedDict[int, tuple[np.ndarray, float, Any]] = \
            collections.OrderedDict()
        self._held_lock = threading.Lock()
        self._truth: collections.deque[tuple[float, str | None, int]] = \
            collections.deque(maxlen=_TRUTH_FRAMES)
        self.frames_detected = 0
        self.frames_missed = 0
        self._source: Any = None
        # The camera's state, why, and since when (monotonic, wall): set on the source thread,
        # read by the loop, which holds or fails the order on the counter while it is away.
        self._camera: tuple[SourceState, str, float, float] = (
            SourceState.CONNECTING, "not started", time.monotonic(), time.time())
        self._told: tuple[bool, str | None] = (False, None)  # the last OrderUpdate sent

    def stop(self, finish_order: bool = False, deadline_s: float = 0.0,
             reason: str = "station stopped") -> None:
        """Ask the loop to end (from any thread or a signal handler); an order cut short
        ends failed with ``reason``."""
        self._finish_order = finish_order
        self._stop_reason = reason
        self._drain_deadline = time.monotonic() + deadline_s
        self._stop.set()

    def send(self, message: object) -> None:
        """Send one message to the engine (any thread); a closed pipe means the engine left."""
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                self._stop.set()

    def run(self) -> None:
        """Open the camera and serve until stopped; every ended order leaves one result."""
        s = self.settings
        catalog = load_catalog(s.orders_path, s.inventory_path)
        from edgeapp.engine.vision.order_reader import OrderIdReader

        # Detections always come with the frame, so the reader never searches a whole frame.
        reader = OrderIdReader(catalog.orders, ticket_class=s.ticket_class,
                               search_frame_text=False)
        reader.warm_up()  # the first order must not wait for the OCR models to load
        tracker = OrderTracker(s.name, reader.read, ticket_class=s.ticket_class,
                               clear_seconds=s.clear_seconds,
                               pre_buffer_frames=s.pre_buffer_frames)
        flow = OrderFlow(s, catalog, self.send, self._segment_truth)
        source = open_source(s.source, stream_key=s.name, loop=s.loop, fps=s.fps,
                             width=s.width, height=s.height, seed=s.seed,
                             target_fps=self._target_fps(s.fps), scale=s.scale,
                             callback=self._on_frame,
                             catalog=catalog, wrong_order_rate=s.wrong_order_rate)
        self._source = source
        source.on_state(self._on_state)
        source.start()
        try:
            self._loop(tracker, flow)
        finally:
            source.stop()
            source.join(5.0)
            self._cut_short(tracker, flow, self._stop_reason)
            flow.abandon(f"{self._stop_reason} before the VLM answered")
            self._send_stats()
            flow.close()
            if self._ring is not None:
                self._ring.close()

    def _loop(self, tracker: OrderTracker, flow: OrderFlow) -> None:
        next_stats = time.monotonic() + self.settings.stats_interval_s
        while True:
            now = time.monotonic()
            self._watch_camera(tracker, flow, now)
            if self._stop.is_set():
                idle = tracker.state is CounterState.IDLE
                if not self._finish_order or now >= self._drain_deadline:
                    return
                if idle:
                    # No new order may start while the last answers come.
                    self._source.stop()
                    self._camera_closed = True
                    if not flow.waiting:
                        return
            if now >= next_stats:
                self._send_stats()
                next_stats = now + self.settings.stats_interval_s
            try:
                if not self._conn.poll(_POLL_S):
                    continue
                message = self._conn.recv()
            except (EOFError, OSError):
                return  # the engine is gone: nobody is left to report to
            if isinstance(message, Detections):
                if self._camera_closed:
                    continue  # frames still on their way would only open a new order
                segment = self._detected(tracker, message)
                if segment is not None:
                    # Asked (or judged) before "idle" is told: a crash in between leaves the
                    # engine an order it still counts as in flight, never none.
                    flow.finish(segment, time.time())
                self._tell_order(tracker)
            elif isinstance(message, VlmReply):
                flow.answer(message)
            elif isinstance(message, SetParameters):
                self._fps_level = message.fps_level
                self._source.set_target(fps=self._target_fps(self._source.source_fps),
                                        scale=message.scale)
            elif isinstance(message, Stop):
                self.stop(message.finish_order, message.deadline_s, message.reason)

    def _tell_order(self, tracker: OrderTracker) -> None:
        """Tell the engine what is on the counter, when that changed."""
        state = (tracker.state is CounterState.BUSY, tracker.order_id)
        if state != self._told:
            self.send(OrderUpdate(state[0], state[1], tracker.start_ts))
            self._told = state

    def _cut_short(self, tracker: OrderTracker, flow: OrderFlow, reason: str) -> None:
        """End the order on the counter now as ``failed`` with ``reason``, if there is one."""
        segment = tracker.flush(time.time(), reason)
        if segment is not None:
            flow.finish(segment, time.time())
            self._tell_order(tracker)

    def _watch_camera(self, tracker: OrderTracker, flow: OrderFlow, now: float) -> None:
        """An order is judged only from a whole stream: hold the order on the counter while
        its camera is away, fail it when the camera stays away past the bound, gives up
        (OFFLINE) or its file ends (ENDED)."""
        state, reason, since, since_wall = self._camera
        if tracker.state is not CounterState.BUSY or state in (SourceState.RUNNING,
                                                               SourceState.CONNECTING):
            return
        if state is SourceState.ENDED:
            if self._camera_closed:
                return  # we closed it: the drain decides about the order
            with self._held_lock:
                in_flight = bool(self._held)
            if in_flight and now - since < _END_GRACE_S:
                return
            self._cut_short(tracker, flow, "source ended")
            return
        why = f"camera offline: {reason}"
        tracker.interrupt(why, since_wall)
        if state is SourceState.RECONNECTING and now - since < self.settings.camera_hold_s:
            return  # it may come back with the same order on the counter
        self._cut_short(tracker, flow, why)

    def _target_fps(self, camera_fps: float | None) -> float | None:
        """The pacer's target for the FPS level (None: every frame of the camera)."""
        if self._fps_level >= 1.0:
            return None
        return self._fps_level * (camera_fps or self.settings.fps)

    def _on_state(self, old: SourceState, new: SourceState, reason: str) -> None:
        """On the source thread: note it for the loop and tell the engine; once running, the
        camera's real FPS is known, so the level becomes a target of that rate (a file may
        differ from config)."""
        self._camera = (new, reason, time.monotonic(), time.time())
        if new is SourceState.RUNNING:
            self._source.set_target(fps=self._target_fps(self._source.source_fps))
        self.send(SourceStateChanged(new.value, reason))
        notice = camera_notice(self._source.describe(), old, new, reason,
                               self._camera_closed or self._stop.is_set())
        if notice is not None:
            self.send(StationNotice(notice[0], notice[1], self.settings.name))

    def _detected(self, tracker: OrderTracker, message: Detections) -> OrderSegment | None:
        with self._held_lock:
            # Frames before this one that never came back were dropped on the way: forget them.
            while self._held and next(iter(self._held)) < message.seq:
                self._held.popitem(last=False)
            held = self._held.pop(message.seq, None)
        if held is None:
            self.frames_missed += 1
            return None
        image, capture_ts, truth = held
        self.frames_detected += 1
        if truth is not None:
            self._truth.append((capture_ts, truth.order_id, truth.frame_index))
        return tracker.push(message.seq, capture_ts, image, message.detections)

    def _on_frame(self, frame: Frame) -> None:
        """On the source thread: into the live ring, held for the order logic, announced."""
        image = frame.image
        if self._ring is None or not self._ring.fits(image):
            old, h, w = self._ring, image.shape[0], image.shape[1]
            self._ring = FrameRing.create(f"{self.settings.name}-l", self.settings.live_slots,
                                          h, w)
            self.send(RingOpened("live", self._ring.spec))
            if old is not None:
                old.close()
        slot = self._slot % self._ring.spec.slots
        self._slot += 1
        self._ring.write(slot, frame.seq, frame.capture_ts, image)
        with self._held_lock:
            self._held[frame.seq] = (image, frame.capture_ts, frame.truth)
            while len(self._held) > self.settings.max_held_frames:
                self._held.popitem(last=False)
        self.send(FrameReady(slot, frame.seq, frame.capture_ts))

    def _segment_truth(self, segment: OrderSegment) -> tuple[str, str] | None:
        """(order id the camera showed, its right verdict), from the synthetic camera's truth."""
        scene = getattr(self._source, "scene", None)
        if scene is None:
            return None
        seen = Counter((oid, idx) for ts, oid, idx in self._truth
                       if oid is not None and segment.start_ts <= ts <= segment.last_busy_ts)
        if not seen:
            return None
        oid = Counter(o for o, _ in seen.elements()).most_common(1)[0][0]
        index = min(idx for o, idx in seen if o == oid)
        for order in reversed(scene.orders):
            if order.order_id == oid and order.start_frame <= index <= order.end_frame:
                return order.order_id, order.verdict
        return None

    def _send_stats(self) -> None:
        source = self._source
        scene = getattr(source, "scene", None)
        self.send(StationStats(
            frames_in=source.frames_in, frames_out=source.frames_out,
            frames_detected=self.frames_detected, frames_missed=self.frames_missed,
            last_capture_ts=source.last_frame_ts,
            truth_orders=None if scene is None else len(scene.finished_orders()),
            fps=source.pacer.fps, scale=source.pacer.scale))


def camera_notice(source: str, old: SourceState, new: SourceState, reason: str,
                  stopping: bool) -> tuple[str, str] | None:
    """(severity, text) telling the operator what happened to the camera, or None."""
    if stopping:
        return None  # the station closes its own camera: nothing went wrong
    where = reason if source in reason else f"{source}: {reason}"
    if new is SourceState.OFFLINE:
        return "error", f"camera offline: {where}"
    if new is SourceState.RECONNECTING:
        return "warning", f"camera lost, reconnecting: {where}"
    if new is SourceState.RUNNING and old is SourceState.RECONNECTING:
        return "info", f"camera back: {source}"
    if new is SourceState.ENDED:
        return "info", f"source ended: {where}"
    return None
