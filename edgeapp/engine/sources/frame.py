"""A captured frame and the states a camera source moves through."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class SourceState(enum.Enum):
    """Where a camera source is in its life; the UI shows exactly this."""

    CONNECTING = "connecting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    ENDED = "ended"


# Allowed transitions. OFFLINE and ENDED are final for a source object; the engine
# makes a new source to try again.
TRANSITIONS: dict[SourceState, frozenset[SourceState]] = {
    SourceState.CONNECTING: frozenset(
        {SourceState.RUNNING, SourceState.RECONNECTING, SourceState.OFFLINE, SourceState.ENDED}
    ),
    SourceState.RUNNING: frozenset(
        {SourceState.RECONNECTING, SourceState.OFFLINE, SourceState.ENDED}
    ),
    SourceState.RECONNECTING: frozenset(
        {SourceState.RUNNING, SourceState.OFFLINE, SourceState.ENDED}
    ),
    SourceState.OFFLINE: frozenset(),
    SourceState.ENDED: frozenset(),
}


@dataclass(frozen=True)
class Frame:
    """One frame of a stream: BGR uint8 HWC image plus where and when it was taken.

    ``seq`` is the source's own frame index (frames skipped by the pacer leave gaps),
    ``capture_ts`` is wall-clock seconds (``time.time()``) at capture, and ``truth`` is
    the synthetic camera's ground truth for this frame (``None`` for real cameras).
    """

    stream_key: str
    seq: int
    capture_ts: float
    image: np.ndarray
    truth: Any = field(default=None, compare=False)
