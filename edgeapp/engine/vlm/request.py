"""What a station asks the VLM (``VlmRequest``) and what it gets back (``VlmAnswer``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeapp.errors import InputError

# Error texts of failed answers that the batcher itself produces; backends add their own
# ("server unreachable: ...", "http error 503: ...", "garbage response", "unparseable answer",
# "empty answer", "backend error: ...").
TIMEOUT = "timeout"
STOPPED = "stopped"


@dataclass(frozen=True, eq=False)  # arrays inside: identity equality, hashable
class VlmRequest:
    """The selected frames of one order, to be turned into an item list by the VLM.

    ``frames`` are BGR uint8 images; ``detections`` (optional, one ``(N, 6)`` float array
    ``x1, y1, x2, y2, score, class`` per frame) are there for backends that can use them.
    ``deadline`` is a ``time.monotonic()`` instant; ``None`` means the batcher's default
    timeout after ``created``.
    """

    request_id: str
    station_id: str
    order_id: str | None
    frames: tuple[np.ndarray, ...]
    detections: tuple[np.ndarray, ...] | None = None
    deadline: float | None = None
    created: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not self.request_id:
            raise InputError("VlmRequest: request_id must be a non-empty string")
        if not self.frames:
            raise InputError(f"VlmRequest {self.request_id}: at least one frame is needed")
        for i, frame in enumerate(self.frames):
            if (
                not isinstance(frame, np.ndarray)
                or frame.dtype != np.uint8
                or frame.ndim != 3
                or frame.shape[2] != 3
                or frame.shape[0] == 0
                or frame.shape[1] == 0
            ):
                raise InputError(
                    f"VlmRequest {self.request_id}: frame {i} must be a BGR uint8 (H, W, 3) "
                    f"array, got {getattr(frame, 'dtype', type(frame).__name__)} "
                    f"{getattr(frame, 'shape', '')}"
                )
        if self.detections is not None and len(self.detections) != len(self.frames):
            raise InputError(
                f"VlmRequest {self.request_id}: {len(self.detections)} detection arrays "
                f"for {len(self.frames)} frames"
            )

    @classmethod
    def new(
        cls,
        station_id: str,
        order_id: str | None,
        frames: Sequence[np.ndarray],
        detections: Sequence[np.ndarray] | None = None,
        timeout_s: float | None = None,
    ) -> VlmRequest:
        """A request with a fresh unique id, created now, due ``timeout_s`` from now."""
        now = time.monotonic()
        return cls(
            request_id=f"{station_id}-{uuid.uuid4().hex[:12]}",
            station_id=station_id,
            order_id=order_id,
            frames=tuple(frames),
            detections=tuple(detections) if detections is not None else None,
            deadline=now + timeout_s if timeout_s is not None else None,
            created=now,
        )


@dataclass(frozen=True)
class VlmAnswer:
    """The VLM's item list for one request, or why there is none.

    ``items`` maps inventory names (aliases already resolved) to quantities; ``{}`` means the
    model saw no items, ``None`` means the request failed and ``error`` says why.
    ``unknown`` lists names the model gave that are not in the inventory (normalised, in
    order of appearance); they are NOT in ``items``. A validator should not count them as
    "extra" by themselves (models name the bag, the ticket, napkins), but should show them
    with the result as evidence.

    Timing: ``latency_s`` is from ``request.created`` to this answer, ``queued_s`` the time
    the request waited in the batcher before its batch went out, ``batch_size`` the size of
    that batch. A backend called directly fills ``latency_s`` with its own call time.
    """

    request_id: str
    items: dict[str, int] | None
    raw_text: str = ""
    error: str | None = None
    latency_s: float = 0.0
    batch_size: int = 0
    queued_s: float = 0.0
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the request produced an item list."""
        return self.error is None and self.items is not None

    @classmethod
    def failed(cls, request_id: str, error: str, raw_text: str = "") -> VlmAnswer:
        """A failed answer: no items, and why."""
        return cls(request_id=request_id, items=None, raw_text=raw_text, error=error)
