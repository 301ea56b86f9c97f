"""What one camera tile says, decided without Qt: live or not, the overlay, health, verdict.

A tile tells the truth about its age (STYLE "The window"): it is live only while its station
runs, its camera runs and new frames keep coming; anything else dims the last frame and says
why, since when, and how old the frame on screen is.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeapp.engine.api import CameraState, StationState

# No new frame for this long is not live, whatever the camera says: at the lowest FPS level a
# 15 FPS camera still sends a frame every 0.2 s.
STALE_AFTER_S = 2.0
# A live frame older than this (the detector is behind) turns the health dot amber.
BEHIND_AFTER_S = 1.0
# Boxes of an earlier frame are drawn (dashed) only this close to the frame on screen: older
# ones would sit beside the items they name.
BOXES_LAG_S = 0.5
# The last verdict stays this long, then fades out over VERDICT_FADE_S.
VERDICT_HOLD_S = 8.0
VERDICT_FADE_S = 4.0


class Health(str, enum.Enum):
    """The tile's health dot."""

    IDLE = "idle"    # starting or stopped: nothing is wrong, nothing flows
    OK = "ok"        # live, keeping up
    SLOW = "slow"    # live but behind (frames late or detections fewer than frames)
    DOWN = "down"    # offline, ended, crashed, reconnecting, or no new frame


@dataclass(frozen=True)
class Overlay:
    """What is written over a tile that is not live (``None`` when live)."""

    headline: str       # e.g. "offline since 14:02:11"
    detail: str         # e.g. "last frame 12 s ago" / the reason


@dataclass(frozen=True)
class Verdict:
    """The last order verdict of a station, for the fading badge."""

    order_id: str
    status: str           # validated / mismatch / unreadable / failed
    at: float             # time.monotonic() when it arrived

    def opacity(self, now: float) -> float:
        """1 while fresh, falling to 0 over the fade; 0 after."""
        age = now - self.at
        if age <= VERDICT_HOLD_S:
            return 1.0
        return max(0.0, 1.0 - (age - VERDICT_HOLD_S) / VERDICT_FADE_S)


def clock(ts: float) -> str:
    """Wall-clock seconds as HH:MM:SS (local time)."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def ago(seconds: float) -> str:
    """A duration as the operator reads an age: 0.4 s, 12 s, 3 min 5 s, 2 h 4 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


class TileModel:
    """One station's tile state: its status, its newest frame, its last verdict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status: Any = None                 # StationStatus, from the 500 ms poll
        self.state: StationState | None = None  # from status or StationStateChanged
        self.camera: CameraState | None = None
        self.reason = ""
        self.since: float = time.time()         # wall time the current state began
        self.stopping = False                   # the window is stopping the engine
        self.engine_failed: str | None = None
        self.seq: int | None = None
        self.capture_ts: float | None = None
        self.image: np.ndarray | None = None
        self.detections: np.ndarray | None = None  # the newest the engine has
        self.detections_lag: int | None = None     # frames between them and the frame (0: its)
        self.last_new_frame: float | None = None   # time.monotonic() a new frame came
        self.verdict: Verdict | None = None

    # ── inputs ───────────────────────────────────────────────────────────────────────────

    def take_frame(self, frame: Any, now: float | None = None) -> None:
        """A new frame (``LatestFrame``) for the tile, with the newest detections: its own, or
        (when the detector is behind and the engine no longer holds their frame) an earlier
        frame's, which the tile draws dashed."""
        self.seq, self.capture_ts, self.image = frame.seq, frame.capture_ts, frame.image
        self.detections = frame.detections
        self.detections_lag = (None if frame.detections_seq is None
                               else frame.seq - frame.detections_seq)
        self.last_new_frame = time.monotonic() if now is None else now

    def take_status(self, status: Any) -> None:
        """The station's ``StationStatus`` from the poll."""
        self.status = status
        self._move(status.state, status.camera, status.reason, time.time())

    def take_state_event(self, event: Any) -> None:
        """A ``StationStateChanged``: exact transition time, before the next poll."""
        self._move(event.new, event.camera, event.reason, event.ts)

    def take_verdict(self, order_id: str, status: str, now: float | None = None) -> None:
        """The station's newest order verdict."""
        self.verdict = Verdict(order_id, status, time.monotonic() if now is None else now)

    def _move(self, state: Any, camera: Any, reason: str, ts: float) -> None:
        state = StationState(state) if state is not None else None
        camera = CameraState(camera) if camera is not None else None
        if (state, camera) != (self.state, self.camera):
            self.since = ts
        self.state, self.camera, self.reason = state, camera, reason

    # ── what to draw ─────────────────────────────────────────────────────────────────────

    def frame_age(self, now_wall: float | None = None) -> float | None:
        """Seconds since the frame on screen was captured."""
        if self.capture_ts is None:
            return None
        return max(0.0, (time.time() if now_wall is None else now_wall) - self.capture_ts)

    def boxes_fit(self) -> bool:
        """Whether the detections may be drawn on the frame on screen: its own, or an earlier
        frame's within BOXES_LAG_S (at the station's frame rate)."""
        lag = self.detections_lag
        if lag is None or lag < 0:
            return False
        fps = self.status.fps_in if self.status is not None else None
        return lag == 0 or (bool(fps) and lag / fps <= BOXES_LAG_S)

    def starved(self, now: float | None = None) -> bool:
        """No new frame for STALE_AFTER_S (or none yet)."""
        if self.last_new_frame is None:
            return True
        return (time.monotonic() if now is None else now) - self.last_new_frame > STALE_AFTER_S

    def live(self, now: float | None = None) -> bool:
        """Frames flow from a running station's running camera."""
        return (self.state is StationState.RUNNING and self.camera is CameraState.RUNNING
                and self.image is not None and not self.starved(now))

    def overlay(self, now: float | None = None, now_wall: float | None = None) -> Overlay | None:
        """What to write over the tile; None when it is live."""
        now_wall = time.time() if now_wall is None else now_wall
        age = self.frame_age(now_wall)
        detail = "no frame yet" if age is None else f"last frame {ago(age)} ago"
        if self.engine_failed is not None:
            return Overlay("engine failed", self.engine_failed)
        if self.stopping and self.state not in (StationState.STOPPED, StationState.CRASHED):
            order = self.status.current_order if self.status is not None else None
            return Overlay("stopping…", f"finishing order {order}" if order else detail)
        headline = self._headline(now)
        if headline is None:
            return None
        if self.state in (StationState.CRASHED, StationState.RESTARTING,
                          StationState.OFFLINE) and self.reason:
            detail = f"{self.reason} · {detail}"
        elif headline == "reconnecting…":
            detail = f"since {clock(self.since)} · {detail}"
        return Overlay(headline, detail)

    def _headline(self, now: float | None) -> str | None:
        since = clock(self.since)
        state, camera = self.state, self.camera
        if state is None or state is StationState.STARTING:
            return "starting…"
        if state is StationState.RESTARTING:
            return "restarting…"
        if state is StationState.CRASHED:
            return f"crashed at {since}"
        if state is StationState.STOPPED:
            return f"stopped at {since}"
        if state is StationState.DRAINING:
            return "stopping…"
        if state is StationState.OFFLINE:  # a station on another machine went silent or left
            return f"station offline since {since}"
        if camera is None or camera is CameraState.CONNECTING:
            return "connecting…"
        if camera is CameraState.RECONNECTING:
            return "reconnecting…"
        if camera is CameraState.OFFLINE:
            return f"offline since {since}"
        if camera is CameraState.ENDED:
            return f"camera ended at {since}"
        if self.image is None:
            return "starting…"
        if self.starved(now):
            assert self.capture_ts is not None
            return f"no new frame since {clock(self.capture_ts)}"
        return None

    def health(self, now: float | None = None, now_wall: float | None = None) -> Health:
        """The health dot."""
        if self.live(now):
            age = self.frame_age(now_wall) or 0.0
            st = self.status
            behind = (st is not None and st.fps_in and st.fps_out is not None
                      and st.fps_out < 0.8 * st.fps_in)
            return Health.SLOW if age > BEHIND_AFTER_S or behind else Health.OK
        if self.state in (None, StationState.STARTING, StationState.STOPPED,
                          StationState.DRAINING) or (
                self.state is StationState.RUNNING and self.camera in (None,
                                                                       CameraState.CONNECTING)):
            return Health.IDLE
        return Health.DOWN
