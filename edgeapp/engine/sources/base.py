"""The camera source template: one thread, an explicit state machine, pacing, bounded delivery."""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from edgeapp.engine.sources.frame import Frame, FrameQueue, SourceState, StateCallback, StateMachine
from edgeapp.engine.sources.pacer import KEEP, Pacer, _Keep
from edgeapp.errors import InputError, SourceError

logger = logging.getLogger(__name__)


class _Default(enum.Enum):
    DEFAULT = "default"


DEFAULT = _Default.DEFAULT
"""``max_reconnects=DEFAULT`` means the source kind's own default."""


class _Outcome(enum.Enum):
    STOPPED, ENDED, LOST = range(3)


class Source:
    """Base of every camera source; subclasses open, grab, retrieve and close, this runs them.

    ``start()`` runs the source on its own (non-daemon) thread, which alone touches the
    device: opening a dead URL can block in OpenCV, and that must never block a caller.
    ``stop()`` only sets a flag; ``join(timeout)`` waits at most ``timeout``. Frames come out
    of ``read(timeout)`` (a small queue that drops the oldest frame when full) or, when a
    ``callback`` is given, are handed to it on the source thread.
    """

    live: ClassVar[bool] = False  # the device paces frames (RTSP, USB); else paced to wall time
    finite: ClassVar[bool] = False  # a failed grab after frames is the end, not a lost link
    default_max_reconnects: ClassVar[int | None] = None  # None = keep trying forever

    def __init__(
        self,
        stream_key: str,
        *,
        target_fps: float | None = None,
        scale: float = 1.0,
        queue_size: int = 2,
        callback: Callable[[Frame], None] | None = None,
        max_reconnects: int | None | _Default = DEFAULT,
        loop: bool = False,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        late_tolerance: float = 0.25,
    ) -> None:
        if queue_size < 1:
            raise InputError(f"source {stream_key}: queue_size must be >= 1, got {queue_size}")
        self.stream_key = stream_key
        self.pacer = Pacer(fps=target_fps, scale=scale)
        self.max_reconnects = (self.default_max_reconnects if max_reconnects is DEFAULT
                               else max_reconnects)
        self.loop = loop
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        # How far behind wall time a paced frame may be and still go out (else it is skipped).
        self.late_tolerance = late_tolerance
        self._callback = callback
        self._machine = StateMachine(f"source {stream_key}")
        self._queue = FrameQueue(queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng, self._next_seq = random.Random(), 0
        self._clock: tuple[float, int] | None = None  # (monotonic t0, seq at t0) for pacing
        self.frames_in = 0  # source frames grabbed
        self.frames_out = 0  # frames the pacer let through and that were delivered
        self.dropped = 0  # delivered frames pushed out of the full queue unread
        self.late = 0  # frames skipped because the paced loop fell behind wall time
        self.source_fps: float | None = None
        self.size: tuple[int, int] | None = None  # source (width, height)
        self.last_frame_ts: float | None = None

    def _open(self) -> tuple[float, int, int]:
        """Open the device; return ``(fps, width, height)``; raise SourceError on failure."""
        raise NotImplementedError

    def _grab(self) -> bool:
        """Advance one frame without decoding it; False = end of stream or failure."""
        raise NotImplementedError

    def _retrieve(self) -> tuple[np.ndarray | None, Any]:
        """Decode the grabbed frame: ``(BGR image or None on failure, truth or None)``."""
        raise NotImplementedError

    def _skip(self) -> None:
        """Let go of a grabbed frame the pacer did not take (the synthetic camera advances)."""

    def _close(self) -> None:
        """Release the device; must not raise and may be called after a failed open."""

    def _scale_truth(self, truth: Any, sx: float, sy: float) -> Any:
        """Ground truth for the frame resized by ``(sx, sy)`` (truth follows the image)."""
        return truth

    def describe(self) -> str:
        """What this source reads, for reasons and logs (no secrets)."""
        return self.stream_key

    def start(self) -> Source:
        """Start the source thread; returns self."""
        if self._thread is not None:
            raise SourceError(f"source {self.stream_key} was already started")
        self._machine.note("connecting")
        self._thread = threading.Thread(target=self._run, name=f"source-{self.stream_key}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the source to stop; returns at once (the thread ends on its own)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the thread to end; True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(5.0)

    @property
    def state(self) -> SourceState:
        """CONNECTING, RUNNING, RECONNECTING, OFFLINE or ENDED."""
        return self._machine.state

    @property
    def state_reason(self) -> str:
        """Why the source is in its state (e.g. the last connection error)."""
        return self._machine.reason

    def on_state(self, callback: StateCallback) -> Callable[[], None]:
        """Call ``callback(old, new, reason)`` on each state change; returns unsubscribe."""
        return self._machine.subscribe(callback)

    def set_target(self, *, fps: float | None | _Keep = KEEP, scale: float | _Keep = KEEP) -> None:
        """Change target FPS (None = source rate) and/or resolution scale while running."""
        self.pacer.set_target(fps=fps, scale=scale)

    def read(self, timeout: float | None = None) -> Frame | None:
        """The oldest queued frame, waiting up to ``timeout`` s; None on timeout or when done."""
        return self._queue.get(timeout)

    def _run(self) -> None:
        try:
            self._main()
        except Exception as exc:
            # A bug in a subclass becomes a state with a reason, not a silently dead thread.
            logger.exception("source %s failed", self.stream_key)
            self._finish(SourceState.OFFLINE, f"internal error: {exc!r}")
        finally:
            self._queue.close()

    def _main(self) -> None:
        failures = 0  # consecutive failed attempts since frames last flowed
        while not self._stop.is_set():
            try:
                raw_fps, width, height = self._open()
                fps = self._check_fps(raw_fps)
            except Exception as exc:
                self._safe_close()
                if not isinstance(exc, SourceError):
                    logger.exception("source %s: open failed", self.stream_key)
                failures += 1
                if not self._retry(failures, str(exc) or repr(exc)):
                    break
                continue
            self.source_fps = fps
            self.size = (int(width), int(height)) if width > 0 and height > 0 else self.size
            frames_before = self.frames_in
            try:
                outcome, reason = self._pump(fps)
            finally:
                self._safe_close()
            if self.frames_in > frames_before:
                failures = 0
            if outcome is _Outcome.STOPPED:
                break
            if outcome is _Outcome.ENDED:
                if self.loop:
                    continue  # keep the pacing clock: the loop plays on in real time
                self._finish(SourceState.ENDED, reason)
                return
            self._clock = None
            self.pacer.reset()
            failures += 1
            if not self._retry(failures, reason):
                break
        self._finish(SourceState.ENDED, "stopped")  # no-op if the retry limit made it OFFLINE

    def _check_fps(self, fps: float) -> float | None:
        if not (math.isfinite(fps) and 0.0 < fps <= 1000.0) and not self.live:
            raise SourceError(f"{self.describe()}: no usable frame rate ({fps})")  # cannot pace
        return float(fps) if math.isfinite(fps) and 0.0 < fps <= 1000.0 else None

    def _pump(self, fps: float | None) -> tuple[_Outcome, str]:
        """Read frames until stop, end or failure."""
        first = True
        while not self._stop.is_set():
            if not self._grab():
                if first:
                    return _Outcome.LOST, f"{self.describe()}: no frame could be read"
                if self.finite:
                    return _Outcome.ENDED, "end of video"
                return _Outcome.LOST, f"{self.describe()}: stream lost"
            now = time.monotonic()
            if first:
                first = False
                if self.state is not SourceState.RUNNING:
                    self._machine.transition(SourceState.RUNNING, "receiving frames")
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            self.frames_in += 1
            if self.live or fps is None:
                take = self.pacer.take(now)
            else:
                if self._clock is None:
                    self._clock = (now, seq)
                take = self.pacer.take(seq / fps)
                if take:
                    wait = self._clock[0] + (seq - self._clock[1]) / fps - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        self._skip()  # every grabbed frame is retrieved or skipped, once
                        return _Outcome.STOPPED, "stopped"
                    if -wait > self.late_tolerance:
                        take = False  # behind wall time: skip, do not bunch frames
                        self.late += 1
            if not take:
                self._skip()
                continue
            capture_ts = time.time()
            image, truth = self._retrieve()
            if image is None:
                if self.finite:
                    return _Outcome.ENDED, "end of video (last frame unreadable)"
                return _Outcome.LOST, f"{self.describe()}: frame could not be decoded"
            self.size = (int(image.shape[1]), int(image.shape[0]))
            out = self.pacer.resize(image)
            if out is not image and truth is not None:
                truth = self._scale_truth(truth, out.shape[1] / image.shape[1],
                                          out.shape[0] / image.shape[0])
            self._deliver(Frame(self.stream_key, seq, capture_ts, out, truth))
        return _Outcome.STOPPED, "stopped"

    def _deliver(self, frame: Frame) -> None:
        self.last_frame_ts = frame.capture_ts
        self.frames_out += 1
        if self._callback is not None:
            try:
                self._callback(frame)
            except Exception:
                logger.exception("source %s: frame callback failed", self.stream_key)
            return
        if self._queue.put(frame):
            self.dropped += 1

    def _retry(self, failures: int, reason: str) -> bool:
        """After a failure: go OFFLINE past the limit, else RECONNECTING and back off."""
        if self.max_reconnects is not None and failures > self.max_reconnects:
            self._finish(SourceState.OFFLINE, reason)
            return False
        if self.state is SourceState.RECONNECTING:
            self._machine.note(reason)
        else:
            self._machine.transition(SourceState.RECONNECTING, reason)
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** min(failures - 1, 30))
        # Jitter spreads the retries of many cameras that lost the same network at once.
        delay = base * self._rng.uniform(0.5, 1.0)
        logger.debug("source %s: retry %d in %.2fs (%s)", self.stream_key, failures, delay, reason)
        return not self._stop.wait(delay)

    def _finish(self, state: SourceState, reason: str) -> None:
        if not self._machine.final:
            self._machine.transition(state, reason)

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:
            logger.exception("source %s: close failed", self.stream_key)
