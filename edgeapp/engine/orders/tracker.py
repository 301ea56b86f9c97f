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
# A ticket is white paper with print: the demo models score a real one >= 0.9 at every
# stream resolution, and a bright patch of an empty counter (a pale counter's lit corner)
# up to 0.42. Below this a "ticket" opens no order and is no other order's ticket.
TICKET_MIN_SCORE = 0.6

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
    ended_by: str  # one of ENDED, or why it was cut short ("camera offline: …", ...)

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
      settled bag to one with a hand moving over it;
    - an order is judged only from a whole stream: when the camera goes away mid-order the
      station calls :meth:`interrupt`; once frames come back the order carries on only if its
      own ticket is seen again; a counter found clear, or another ticket, ends it cut short
      with the interruption's reason. An order ended by :meth:`flush` leaves a ghost: its
      remaining frames (the same ticket, or items without a ticket) open no new order until
      the counter has been clear for ``clear_seconds`` or another ticket shows.
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
        ticket_min_score: float = TICKET_MIN_SCORE,
        read_every: int = 2,
    ) -> None:
        self.station_id = station_id
        self._reader = reader
        self._ticket = ticket_class
        self._clear_s = clear_seconds
        self._start_frames = max(1, start_frames)
        self._max_candidates = max_candidates
        self._min_score = min_score
        self._ticket_min_score = ticket_min_score
        self._read_every = max(1, read_every)
        self._pre: deque[CandidateFrame] = deque(maxlen=max(pre_buffer_frames, start_frames))
        self.state = CounterState.IDLE
        self._run = 0
        # While a flushed order's frames may still come: its ticket box (None: it showed none).
        self._ghost = False
        self._ghost_box: np.ndarray | None = None
        self._ghost_clear_ts: float | None = None
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
        # Why the camera went away mid-order and when (wall time); None while the stream is whole.
        self._away: str | None = None
        self._away_ts = 0.0
        self._back = False  # a frame came after the gap

    @property
    def order_id(self) -> str | None:
        """The order id locked for the order on the counter, if read yet."""
        return self._order_id

    @property
    def interrupted(self) -> bool:
        """Whether the order on the counter lost its camera and has not been confirmed since."""
        return self._away is not None

    def interrupt(self, reason: str, ts: float) -> None:
        """The camera left RUNNING at ``ts`` (wall time): hold the order on the counter.

        Frames captured before ``ts`` (still coming back from the workers) count as usual;
        after it, the order carries on once its own ticket shows again, and ends with
        ``reason`` if the counter is found clear or another ticket takes its place first.
        """
        if self.state is CounterState.BUSY:
            self._away, self._away_ts, self._back = reason, ts, False

    @property
    def start_ts(self) -> float | None:
        """When the order on the counter started (its first frame's capture time); None if idle."""
        return self._start_ts if self.state is CounterState.BUSY else None

    def push(
        self, seq: int, capture_ts: float, image: np.ndarray, detections: np.ndarray
    ) -> OrderSegment | None:
        """Take the next frame of the station; returns the finished order, if this ended one."""
        dets = self._credible(detections)
        present = len(dets) > 0
        if self.state is CounterState.IDLE and self._ghost:
            if self._haunted(capture_ts, dets, image.shape):
                return None
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
        if self._away is not None and capture_ts > self._away_ts and not self._back:
            # The clear time counts from the first frame back: one frame that misses the
            # bag does not end the order, after a gap as before it.
            self._back, self._last_busy_ts = True, capture_ts
        if present:
            cand = CandidateFrame(seq, capture_ts, image, dets, thumb)
            if self._another_ticket(dets, image.shape):
                segment = self._finish(capture_ts, self._ended_by("new ticket", capture_ts))
                self._begin([cand])
                return segment
            if self._away is not None and capture_ts > self._away_ts and \
                    self._shows_own_ticket(dets, image.shape):
                self._away = None  # the same order is still on the counter: carry on
            self._seen += 1
            self._watch(capture_ts, thumb)
            self._take(cand)
            return None
        self._seen += 1
        self._watch(capture_ts, thumb)
        if capture_ts - self._last_busy_ts >= self._clear_s:
            return self._finish(capture_ts, self._ended_by("clear", capture_ts))
        return None

    def _credible(self, detections: np.ndarray) -> np.ndarray:
        """The detections to believe: items from ``min_score``, tickets from
        ``ticket_min_score``."""
        if not len(detections):
            return detections
        floor = np.full(len(detections), self._min_score, np.float32)
        if self._ticket is not None:
            floor[detections[:, 5] == self._ticket] = max(self._min_score,
                                                          self._ticket_min_score)
        return detections[detections[:, 4] >= floor]

    def _ended_by(self, how: str, capture_ts: float) -> str:
        """``how``, unless the order was interrupted and this frame came after the gap: an
        order whose end the camera did not see was not seen whole."""
        if self._away is not None and capture_ts > self._away_ts:
            return self._away
        return how

    def _tickets(self, dets: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Ticket boxes of ``dets`` as fractions of the frame (the resolution may change)."""
        assert self._ticket is not None
        h, w = shape[:2]
        return dets[dets[:, 5] == self._ticket][:, :4] / np.array([w, h, w, h], np.float32)

    def _shows_own_ticket(self, dets: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether this frame shows the order's own ticket (any detection without tickets)."""
        if self._ticket is None:
            return True
        tickets = self._tickets(dets, shape)
        if not len(tickets):
            return False
        if self._ticket_box is None:
            return True  # the order's ticket was never seen: the first one is its own
        return bool(box_iou(self._ticket_box[None], tickets)[0].max() >= _SAME_TICKET_IOU)

    def _haunted(self, capture_ts: float, dets: np.ndarray, shape: tuple[int, ...]) -> bool:
        """While a flushed order's frames may still come: whether to ignore this frame."""
        if not len(dets):
            if self._ghost_clear_ts is None:
                self._ghost_clear_ts = capture_ts
            if capture_ts - self._ghost_clear_ts >= self._clear_s:
                self._ghost = False  # the counter was cleared: what comes next is new
            return True
        self._ghost_clear_ts = None
        box = self._ghost_box
        if self._ticket is not None and box is not None:
            tickets = self._tickets(dets, shape)
            if len(tickets) and box_iou(box[None], tickets)[0].max() < _SAME_TICKET_IOU:
                self._ghost = False  # another ticket: a new order
                return False
        return True

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
        tickets = self._tickets(dets, shape)
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
        """End the order on the counter now, cut short with ``reason`` (camera gone for too
        long, station stopping), if there is one; its later frames open no new order."""
        if self.state is CounterState.IDLE:
            return None
        ghost = self._ticket_box
        segment = self._finish(end_ts, reason)
        self._ghost, self._ghost_box, self._ghost_clear_ts = True, ghost, None
        return segment
