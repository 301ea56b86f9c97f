"""Camera sources: files, RTSP/HTTP streams, USB cameras and the synthetic camera, paced."""

from __future__ import annotations

from edgeapp.engine.sources.base import DEFAULT, Source
from edgeapp.engine.sources.factory import open_source
from edgeapp.engine.sources.file import CaptureSource, FileSource, VideoInfo, probe_video
from edgeapp.engine.sources.frame import (
    TRANSITIONS,
    Frame,
    FrameQueue,
    SourceState,
    StateCallback,
    StateMachine,
)
from edgeapp.engine.sources.pacer import KEEP, Pacer, even_size
from edgeapp.engine.sources.stream import StreamSource, redact
from edgeapp.engine.sources.synthetic_source import SyntheticSource
from edgeapp.engine.sources.usb import UsbSource

__all__ = [
    "DEFAULT",
    "KEEP",
    "TRANSITIONS",
    "CaptureSource",
    "FileSource",
    "Frame",
    "FrameQueue",
    "Pacer",
    "Source",
    "SourceState",
    "StateCallback",
    "StateMachine",
    "StreamSource",
    "SyntheticSource",
    "UsbSource",
    "VideoInfo",
    "even_size",
    "open_source",
    "probe_video",
    "redact",
]
