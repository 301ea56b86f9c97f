"""Order boundaries from a station's detections: busy/idle, order id, end of order."""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeapp.engine.orders.selector import CandidateFrame, item_counts, same_scene, thumbnail
from edgeapp.engine.vision.postprocess import box_iou

# How an order may end on its own; any other ``ended_by`` means it was cut short.
ENDED = ("clear", "new ticket")
# A ticket box overlapping the order's own by less than this is another ticket.
_SAME_TICKET_IOU = 0.3

# reader(image, detections) -> an object with ``order_id`` (str | None), ``confidence`` and
# ``reason`` (see edgeapp.engine.vision.order_reader.OrderIdRead).
OrderIdReaderFn = Callable[[np.ndarray, np.ndarray], Any]


class CounterState(enum.Enum):
    """Whether an order is on the counter."""

    IDLE = "idle"
    BUSY = "busy"


@dataclass(frozen=True)
class OrderSegment:
    """One order as the tracker saw it, handed on when the counter has been clear long enough."""

    station_id: str
    order_id: str | None
    read_confidence: float
    read_reason: str | None
    start_ts: float
    last_busy_ts: float
    end_ts: float
    frames: tuple[CandidateFrame, ...]
    frames_seen: int
    read_attempts: int
    ended_by: str  # one of ENDED, or the reason it was cut short ("station stopped", ...)

    @property
    def complete(self) -> bool:
        """Whether the order ended on its own (not cut short by the station)."""
        return self.ended_by in ENDED


class OrderTracker:
    """Feeds on (frame, detections) in capture order; returns an ``OrderSegment`` at each end.

    - busy when the ticket or items are seen in ``start_frames`` consecutive frames (one
      stray detection does not open an order); the frames of that run are kept (pre-buffer),
      so an order's first frames are never lost;
    - the order id is read from the ticket on busy frames that show it, until one read
      succeeds; then it is locked for the order;
    - the order ends when the counter has been clear for ``clear_seconds``, or when another
      ticket takes the place of the order's own (two ticket frames in a row where no ticket
      overlaps it): the next order was put down before the counter looked clear that long;
    - each frame is matched against the scene seen so far (:func:`same_scene`): the frames
      of an order get ``still_s``, how long their scene lasted, so the selector can prefer a
      settled bag to one with a hand moving over it.
    Candidate frames are bounded: the ``max_candidates`` frames with the most items are kept
    (a busy frame where the detector sees only the ticket is one too: at low settings it
    misses items the VLM will see).
    """

    def __init__(
        self,
        station_id: str,
        reader: OrderIdReaderFn | None,
        *,
        ticket_class: int | None,
        clear_seconds: float = 1.0,
        start_frames: int = 2,
        pre_buffer_frames: int = 8,
        max_candidates: int = 48,
        min_score: float = 0.35,
        read_every: int = 2,
    ) -> None:
        self.station_id = station_id
        self._reader = reader
        self._ticket = ticket_class
        self._clear_s = clear_seconds
        self._start_frames = max(1, start_frames)
        self._max_candidates = max_candidates
        self._min_score = min_score
        self._read_every = max(1, read_every)
        self._pre: deque[CandidateFrame] = deque(maxlen=max(pre_buffer_frames, start_frames))
        self.state = CounterState.IDLE
        self._run = 0
        self._reset()

    def _reset(self) -> None:
        # (rank key, frame, index of its scene in _runs)
        self._candidates: list[tuple[tuple[int, float, int], CandidateFrame, int]] = []
        self._order_id: str | None = None
        self._confidence = 0.0
        self._reason: str | None = None
        self._attempts = 0
        self._seen = 0
        self._start_ts = self._last_busy_ts = 0.0
        self._scene: np.ndarray | None = None  # thumbnail of the current scene's first frame
        self._runs: list[list[float]] = []  # [first, last] capture time of each scene
        self._ticket_box: np.ndarray | None = None  # where this order's ticket lies
        self._strangers = 0  # ticket frames in a row that showed only another ticket

    @property
    def order_id(self) -> str | None:
        """The order id locked for the order on the counter, if read yet."""
        return self._order_id

    @property
    def start_ts(self) -> float | None:
        """When the order on the counter started (its first frame's capture time); None if idle."""
        return self._start_ts if self.state is CounterState.BUSY else None

    def push(
        self, seq: int, capture_ts: float, image: np.ndarray, detections: np.ndarray
    ) -> OrderSegment | None:
        """Take the next frame of the station; returns the finished order, if this ended one."""
        dets = detections[detections[:, 4] >= self._min_score] if len(detections) else detections
        present = len(dets) > 0
        if self.state is CounterState.IDLE:
            if not present:
                self._run = 0
                self._pre.clear()
                return None
            self._run += 1
            self._pre.append(CandidateFrame(seq, capture_ts, image, dets, thumbnail(image)))
            if self._run >= self._start_frames:
                self._begin(list(self._pre))
                self._pre.clear()
            return None
        thumb = thumbnail(image)
        if present:
            cand = CandidateFrame(seq, capture_ts, image, dets, thumb)
            if self._another_ticket(dets, image.shape):
                segment = self._finish(capture_ts, "new ticket")
                self._begin([cand])
                return segment
            self._seen += 1
            self._watch(capture_ts, thumb)
            self._take(cand)
            return None
        self._seen += 1
        self._watch(capture_ts, thumb)
        if capture_ts - self._last_busy_ts >= self._clear_s:
            return self._finish(capture_ts, "clear")
        return None

    def _begin(self, frames: list[CandidateFrame]) -> None:
        """A new order is on the counter; ``frames`` are its first."""
        self.state = CounterState.BUSY
        self._start_ts = frames[0].capture_ts
        self._seen = len(frames)
        for cand in frames:
            self._watch(cand.capture_ts, cand.thumb)
            self._take(cand)

    def _another_ticket(self, dets: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether this frame, with the ticket frame before it, shows another order's ticket
        in place of this order's own; follows the order's ticket when it moves a little.
        Boxes are compared as fractions of the frame: the stream's resolution may change."""
        if self._ticket is None:
            return False
        mine = dets[dets[:, 5] == self._ticket]
        if not len(mine):
            return False
        h, w = shape[:2]
        tickets = mine[:, :4] / np.array([w, h, w, h], np.float32)
        if self._ticket_box is None:
            self._ticket_box = tickets[int(np.argmax(mine[:, 4]))]
            return False
        overlap = box_iou(self._ticket_box[None], tickets)[0]
        if overlap.max() >= _SAME_TICKET_IOU:
            self._ticket_box = tickets[int(np.argmax(overlap))]
            self._strangers = 0
            return False
        self._strangers += 1
        return self._strangers >= 2

    def _watch(self, capture_ts: float, thumb: np.ndarray) -> None:
        """Extend the current scene with this frame, or start a new one if it changed."""
        if self._scene is not None and same_scene(thumb, self._scene):
            self._runs[-1][1] = capture_ts
        else:
            self._scene = thumb
            self._runs.append([capture_ts, capture_ts])

    def _take(self, cand: CandidateFrame) -> None:
        self._last_busy_ts = cand.capture_ts
        if self._order_id is None and self._reader is not None:
            shows_ticket = self._ticket is None or bool(
                (cand.detections[:, 5] == self._ticket).any())
            if shows_ticket and self._attempts % self._read_every == 0:
                read = self._reader(cand.image, cand.detections)
                if read.order_id is not None:
                    self._order_id, self._confidence = read.order_id, float(read.confidence)
                    self._reason = None
                elif read.reason:
                    self._reason = read.reason
            if shows_ticket:
                self._attempts += 1
        counts = item_counts(cand.detections, self._ticket)
        key = (sum(counts.values()), float(cand.detections[:, 4].sum()), cand.seq)
        self._candidates.append((key, cand, len(self._runs) - 1))
        if len(self._candidates) > self._max_candidates:
            self._candidates.remove(min(self._candidates, key=lambda e: e[0]))

    def _finish(self, end_ts: float, ended_by: str) -> OrderSegment:
        still = [last - first for first, last in self._runs]
        frames = tuple(sorted((dataclasses.replace(c, still_s=still[run])
                               for _, c, run in self._candidates), key=lambda c: c.seq))
        segment = OrderSegment(
            self.station_id, self._order_id, self._confidence,
            None if self._order_id else (self._reason or "no ticket read"),
            self._start_ts, self._last_busy_ts, end_ts, frames, self._seen,
            self._attempts, ended_by,
        )
        self.state = CounterState.IDLE
        self._run = 0
        self._reset()
        return segment

    def flush(self, end_ts: float, reason: str) -> OrderSegment | None:
        """End the order on the counter now (station stopping or failing), if there is one."""
        if self.state is CounterState.IDLE:
            return None
        return self._finish(end_ts, reason)
