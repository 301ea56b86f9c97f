"""What a station process and the engine say to each other over their pipe.

Small frozen records only: frames travel through the shared-memory rings, never through the
pipe; detections (an ``(N, 6)`` float32 array per frame) and item lists are small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeapp.engine.stations.ring import RingSpec

# ── station → engine ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class RingOpened:
    """The station made a frame ring: ``live`` (paced frames) or ``order`` (VLM frames)."""

    kind: str
    spec: RingSpec


@dataclass(frozen=True)
class FrameReady:
    """A paced frame is in live-ring ``slot``: submit it for detection."""

    slot: int
    seq: int
    capture_ts: float


@dataclass(frozen=True)
class SourceStateChanged:
    """The camera source changed state (``SourceState`` value) for ``reason``."""

    state: str
    reason: str


@dataclass(frozen=True)
class OrderUpdate:
    """The order on the counter: started (``busy``), its id locked, or ended (``idle``)."""

    busy: bool
    order_id: str | None
    started_ts: float | None


@dataclass(frozen=True)
class VlmAsk:
    """One order's selected frames are in order-ring ``slots``: ask the VLM batcher."""

    request_id: str
    order_id: str | None
    slots: tuple[int, ...]
    seqs: tuple[int, ...]
    detections: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class ResultReady:
    """An order's verdict (``OrderResult.to_dict()``)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class StationStats:
    """Counters since the station started (the engine turns them into rates)."""

    frames_in: int
    frames_out: int
    frames_detected: int
    frames_missed: int  # detections came back for a frame the station no longer held
    last_capture_ts: float | None
    truth_orders: int | None  # orders the synthetic camera finished (None: a real camera)
    fps: float | None  # the pacer's target now (None: every camera frame)
    scale: float


@dataclass(frozen=True)
class StationNotice:
    """Something the operator should know (``info`` / ``warning`` / ``error``), said by
    ``part`` (the station's name; empty: the station's text names itself)."""

    severity: str
    text: str
    part: str = ""


# ── engine → station ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Detections:
    """Detections of frame ``seq`` (in frame order; frames that were dropped never come)."""

    seq: int
    detections: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VlmReply:
    """The batcher's answer to ``request_id``: ``items`` or ``error``."""

    request_id: str
    items: dict[str, int] | None
    error: str | None
    unknown: tuple[str, ...] = ()
    queued_s: float = 0.0
    latency_s: float = 0.0
    batch_size: int = 0


@dataclass(frozen=True)
class SetParameters:
    """New pacer target: ``fps_level`` and ``scale``, both fractions of the camera's own."""

    fps_level: float
    scale: float


@dataclass(frozen=True)
class Stop:
    """Stop the camera; with ``finish_order``, first let the order on the counter end."""

    finish_order: bool
    deadline_s: float
    reason: str = "station stopped"  # why an order cut short ends failed
