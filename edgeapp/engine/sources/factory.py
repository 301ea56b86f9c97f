"""Turn a source spec from the config or command line into a Source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeapp.engine.sources.base import DEFAULT, Source, _Default
from edgeapp.engine.sources.stream import SCHEMES, StreamSource, redact
from edgeapp.errors import SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgeapp.engine.orders.catalog import Catalog
    from edgeapp.engine.sources.frame import Frame

SPEC_HELP = "synthetic, a video file path, rtsp://…, rtsps://…, http(s)://… or usb:N"


def file_path(spec: str) -> str | None:
    """The video file ``spec`` names (``clip.mp4``, ``file:///…``), or None for any other
    kind of source (synthetic, usb:N, a stream URL)."""
    text = spec.strip()
    if text.lower() == "synthetic" or text.lower().startswith("usb:"):
        return None
    if "://" in text:
        if text.split("://", 1)[0].lower() != "file":
            return None
        text = text[len("file://"):]
    return text or None


def open_source(
    spec: str,
    *,
    stream_key: str,
    loop: bool = False,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    seed: int = 0,
    target_fps: float | None = None,
    scale: float = 1.0,
    queue_size: int = 2,
    callback: Callable[[Frame], None] | None = None,
    max_reconnects: int | None | _Default = DEFAULT,
    catalog: Catalog | None = None,
    wrong_order_rate: float = 0.2,
    **options: Any,
) -> Source:
    """Make the source ``spec`` names (not started: subscribe to it, then ``start()``).

    ``fps``/``width``/``height`` describe the camera itself: the synthetic scene's size and
    rate, or what to ask of a USB camera (files and streams have their own). ``target_fps``
    and ``scale`` are the pacer's starting point. ``options`` go to the source class (e.g.
    ``open_timeout`` for streams, ``backoff_initial``). Unknown specs raise SourceError.
    """
    common: dict[str, Any] = dict(
        target_fps=target_fps, scale=scale, queue_size=queue_size, callback=callback,
        max_reconnects=max_reconnects, **options,
    )
    text = spec.strip()
    if text.lower() == "synthetic":
        from edgeapp.engine.sources.synthetic_source import SyntheticSource

        return SyntheticSource(
            stream_key=stream_key, catalog=catalog, width=width or 1280, height=height or 720,
            fps=fps or 15.0, seed=seed, wrong_order_rate=wrong_order_rate, **common,
        )
    if text.lower().startswith("usb:"):
        index = text[4:]
        if not index.isdigit():
            raise SourceError(f"unknown source {spec!r}: a USB camera is usb:N (e.g. usb:0)")
        from edgeapp.engine.sources.usb import UsbSource

        return UsbSource(int(index), stream_key=stream_key, width=width, height=height,
                         fps=fps, **common)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme in SCHEMES:
            return StreamSource(text, stream_key=stream_key, **common)
        if scheme != "file":
            raise SourceError(f"unknown source {redact(spec)!r}: use {SPEC_HELP}")
        text = text[len("file://"):]
    if not text:
        raise SourceError(f"unknown source {spec!r}: use {SPEC_HELP}")
    from edgeapp.engine.sources.file import FileSource

    # A missing file is not refused here: it becomes OFFLINE with the reason, like any
    # camera that cannot be opened, so the engine treats every kind the same way.
    return FileSource(text, stream_key=stream_key, loop=loop, **common)
