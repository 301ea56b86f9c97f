"""A captured frame and the states a camera source moves through."""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeapp.errors import SourceError

logger = logging.getLogger(__name__)


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


StateCallback = Callable[[SourceState, SourceState, str], None]
"""Called as ``callback(old, new, reason)`` after each state change."""


class StateMachine:
    """A source's current state, the reason for it, and the callbacks that watch it.

    Only the source's own thread changes the state, so callbacks arrive in order; they run
    on that thread and must be quick (the UI bridge re-emits them as queued signals).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._state = SourceState.CONNECTING
        self._reason = "not started"
        self._watchers: list[StateCallback] = []

    @property
    def state(self) -> SourceState:
        """The current state."""
        return self._state

    @property
    def reason(self) -> str:
        """Why the source is in its current state (shown to the operator)."""
        return self._reason

    @property
    def final(self) -> bool:
        """True once the source is OFFLINE or ENDED (no way out)."""
        return not TRANSITIONS[self._state]

    def subscribe(self, callback: StateCallback) -> Callable[[], None]:
        """Call ``callback(old, new, reason)`` on every change; returns an unsubscribe function."""
        with self._lock:
            self._watchers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._watchers:
                    self._watchers.remove(callback)

        return unsubscribe

    def transition(self, new: SourceState, reason: str) -> None:
        """Move to ``new``; raises SourceError if the table does not allow it."""
        with self._lock:
            old = self._state
            if new not in TRANSITIONS[old]:
                raise SourceError(
                    f"{self._name}: illegal state change {old.name} -> {new.name} ({reason})"
                )
            self._state, self._reason = new, reason
            watchers = list(self._watchers)
        logger.info("%s: %s -> %s (%s)", self._name, old.name, new.name, reason)
        for callback in watchers:
            try:
                callback(old, new, reason)
            except Exception:
                # A broken watcher must not stop the camera; the log names it.
                logger.exception("%s: state callback %r failed", self._name, callback)

    def note(self, reason: str) -> None:
        """Update the reason without a state change (e.g. another failed reconnect)."""
        with self._lock:
            self._reason = reason


class FrameQueue:
    """A small bounded queue of frames that drops the oldest when full (a live view wants now)."""

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._frames: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: Frame) -> bool:
        """Add ``frame``; True if the oldest frame had to be dropped for it."""
        with self._cond:
            dropped = len(self._frames) >= self._size
            if dropped:
                self._frames.popleft()
            self._frames.append(frame)
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest frame, waiting up to ``timeout`` s; None on timeout or closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._frames.popleft()

    def close(self) -> None:
        """No more frames will come: wake every reader (they drain what is left, then get None)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
