"""From an ended order to its verdict: frame selection, the VLM ask, evidence, validation.

Runs on the station's main loop. An order with a known id sends ONE ``VlmAsk`` (its selected
frames in the order ring) and waits for the ``VlmReply``; an order whose id could not be read
is judged ``unreadable`` at once (its frames are still saved). An order the station did not
see whole (its camera went away, its file ended, the station stopped) is ``failed`` with that
reason. Every order that ended leaves exactly one ``OrderResult``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from edgeapp.engine.orders.catalog import Catalog
from edgeapp.engine.orders.selector import CandidateFrame, select_frames
from edgeapp.engine.orders.tracker import OrderSegment
from edgeapp.engine.orders.validator import validate
from edgeapp.engine.stations.messages import (
    ResultReady,
    RingOpened,
    StationNotice,
    VlmAsk,
    VlmReply,
)
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.paths import evidence_dir

logger = logging.getLogger(__name__)

# An item in the bag stays put until the bag leaves (the demo pauses >= 1 s before that); a
# hand that the detector takes for an item passes in under half a second.
STEADY_S = 0.6
# A packed bag sits still for a while; a hand putting an item in or reaching for the bag
# stays less than half a second. Frames of a scene that lasted this long are preferred.
STILL_S = 0.4

# (order id the camera showed, its right verdict) for a segment, or None for a real camera.
TruthLookup = Callable[[OrderSegment], "tuple[str, str] | None"]


@dataclass
class _Waiting:
    """An order whose VLM answer has not come yet."""

    segment: OrderSegment
    frames: list[CandidateFrame]
    slots: tuple[int, ...]
    truth: tuple[str, str] | None
    asked_at: float
    timings: dict[str, float]
    evidence: tuple[str, ...] = ()


class OrderFlow:
    """Turns the tracker's ``OrderSegment``s into ``OrderResult``s for one station."""

    def __init__(self, settings: StationSettings, catalog: Catalog,
                 send: Callable[[object], None], truth: TruthLookup) -> None:
        self.settings = settings
        self.catalog = catalog
        self._send = send
        self._truth = truth
        self._ring: FrameRing | None = None
        self._free: list[int] = []
        self._waiting: dict[str, _Waiting] = {}
        self._evidence_root = evidence_dir(settings.data_dir) / settings.name

    @property
    def waiting(self) -> int:
        """Orders waiting for their VLM answer."""
        return len(self._waiting)

    def finish(self, segment: OrderSegment, detected_ts: float) -> None:
        """An order ended: ask the VLM, or judge it at once when it cannot be checked."""
        t0 = time.time()
        frames = select_frames(list(segment.frames), self.settings.top_k_frames,
                               self.settings.ticket_class, min_run_s=STEADY_S,
                               min_still_s=STILL_S)
        timings = {"detect_s": max(0.0, detected_ts - segment.end_ts),
                   "select_s": time.time() - t0}
        truth = self._truth(segment)
        expected = None if segment.order_id is None else self.catalog.expected(segment.order_id)
        token = uuid.uuid4().hex[:12]
        if expected is None or not frames or not segment.complete:
            reason = None
            if not segment.complete:
                reason = segment.ended_by  # "camera offline: …", "source ended", …
            elif expected is not None:
                reason = "no frame of the order showed items"
            evidence = self._save_evidence(segment, frames, token)
            self._emit(segment, frames, truth, timings, evidence, detected=None, reason=reason,
                       result_id=f"{self.settings.name}-{token}",
                       cut_short=not segment.complete)
            return
        slots = self._store_frames(frames)
        if slots is None:
            evidence = self._save_evidence(segment, frames, token)
            self._emit(segment, frames, truth, timings, evidence, detected=None,
                       reason="too many orders waiting for the VLM",
                       result_id=f"{self.settings.name}-{token}")
            return
        request_id = f"{self.settings.name}-{token}"
        self._send(VlmAsk(request_id, segment.order_id, slots, tuple(f.seq for f in frames),
                          tuple(f.detections for f in frames)))
        waiting = _Waiting(segment, frames, slots, truth, time.monotonic(), timings)
        self._waiting[request_id] = waiting
        # Written while the VLM works: the JPEGs cost tens of ms that the verdict need not wait.
        waiting.evidence = self._save_evidence(segment, frames, token)

    def answer(self, reply: VlmReply) -> None:
        """The VLM answered (or failed) for one of our orders: validate and report it."""
        waiting = self._waiting.pop(reply.request_id, None)
        if waiting is None:
            logger.warning("station %s: answer for unknown request %s", self.settings.name,
                           reply.request_id)
            return
        self._free.extend(waiting.slots)
        waiting.timings.update(vlm_s=reply.latency_s, vlm_queued_s=reply.queued_s,
                               vlm_batch_size=float(reply.batch_size))
        reason = None if reply.items is not None else (reply.error or "no item list")
        self._emit(waiting.segment, waiting.frames, waiting.truth, waiting.timings,
                   waiting.evidence, detected=reply.items, reason=reason,
                   result_id=reply.request_id, unknown=reply.unknown)

    def abandon(self, reason: str) -> None:
        """The station stops before some answers came: those orders fail with ``reason``."""
        for request_id in list(self._waiting):
            self.answer(VlmReply(request_id, None, reason))

    def close(self) -> None:
        """Detach the order ring (the engine unlinks it)."""
        if self._ring is not None:
            self._ring.close()
            self._ring = None

    def _store_frames(self, frames: list[CandidateFrame]) -> tuple[int, ...] | None:
        """Copy the frames into free order-ring slots; None when too few slots are free."""
        biggest = max(frames, key=lambda f: f.image.shape[0] * f.image.shape[1]).image
        if self._ring is None or not self._ring.fits(biggest):
            if self._waiting and self._ring is not None:
                return None  # a bigger ring would pull frames from under waiting orders
            self.close()
            k = self.settings.top_k_frames
            h, w = biggest.shape[:2]
            self._ring = FrameRing.create(f"{self.settings.name}-o",
                                          k * self.settings.order_slots, h, w)
            self._free = list(range(k * self.settings.order_slots))
            self._send(RingOpened("order", self._ring.spec))
        if len(self._free) < len(frames):
            return None
        slots = tuple(self._free.pop() for _ in frames)
        for slot, frame in zip(slots, frames, strict=True):
            self._ring.write(slot, frame.seq, frame.capture_ts, frame.image)
        return slots

    def _save_evidence(self, segment: OrderSegment, frames: list[CandidateFrame],
                       token: str) -> tuple[str, ...]:
        """The selected frames as JPEGs; a disk problem is a notice, never a lost order."""
        if not frames:
            return ()
        day = time.strftime("%Y-%m-%d", time.localtime(segment.end_ts))
        folder = self._evidence_root / day
        paths: list[str] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for i, frame in enumerate(frames):
                path = folder / f"{segment.order_id or 'unread'}-{token}-{i}.jpg"
                if not cv2.imwrite(str(path), frame.image, [cv2.IMWRITE_JPEG_QUALITY, 85]):
                    raise OSError(f"cv2 could not write {path}")
                paths.append(str(path))
        except OSError as exc:
            self._send(StationNotice("warning", f"station {self.settings.name}: evidence of "
                                                f"order {segment.order_id} not saved: {exc}"))
        return tuple(paths)

    def _emit(self, segment: OrderSegment, frames: list[CandidateFrame],
              truth: tuple[str, str] | None, timings: dict[str, float],
              evidence: tuple[str, ...], *, detected: dict[str, int] | None,
              reason: str | None, result_id: str, unknown: tuple[str, ...] = (),
              cut_short: bool = False) -> None:
        t0 = time.time()
        oid = segment.order_id
        expected = None if oid is None else self.catalog.expected(oid)
        if oid is None and segment.read_reason:
            reason = f"{segment.read_reason}; {reason}" if reason else segment.read_reason
        if unknown:
            note = "the VLM also named: " + ", ".join(unknown)
            reason = f"{reason}; {note}" if reason else note
        # An order the station did not see whole gets no verdict, whatever its id: it fails
        # with the reason, and has no truth to be judged against.
        truth_verdict = None if truth is None or cut_short else truth[1]
        if cut_short:
            expected = expected or {}
        result = validate(oid, expected, detected, self.catalog, station_id=self.settings.name,
                          num_frames=len(frames), evidence=evidence, reason=reason,
                          truth_verdict=truth_verdict)
        if truth is not None and result.truth_correct is not None and oid != truth[0]:
            # The right verdict for the wrong order is still a wrong verdict.
            note = f"the camera showed order {truth[0]}"
            result = dataclasses.replace(result, truth_correct=False, reason=(
                f"{result.reason}; {note}" if result.reason else note))
        timings["validate_s"] = time.time() - t0
        # The result carries the VLM request's id, so the engine can tell which asks ended.
        result = dataclasses.replace(result, timings=timings, result_id=result_id,
                                     latency_s=max(0.0, time.time() - segment.end_ts))
        self._send(ResultReady(result.to_dict()))
