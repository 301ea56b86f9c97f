"""Shared helpers for the source tests: start, record, wait, and check that nothing leaks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from edgeapp.engine.sources import Frame, Source, SourceState


@contextlib.contextmanager
def no_leaked_threads(grace: float = 5.0) -> Iterator[None]:
    """Fail if the block leaves threads running (after ``grace`` s for them to end)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + grace
    while (extra := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not extra, f"threads left running: {sorted(t.name for t in extra)}"


class Recorder:
    """Starts sources, records their state changes, and always stops them."""

    def __init__(self) -> None:
        self.sources: list[Source] = []
        self.changes: dict[str, list[tuple[SourceState, SourceState, str]]] = {}

    def __call__(self, source: Source) -> Source:
        log = self.changes.setdefault(source.stream_key, [])
        source.on_state(lambda old, new, why: log.append((old, new, why)))
        self.sources.append(source)
        return source.start()

    def path(self, source: Source) -> list[SourceState]:
        """The states ``source`` went through, from the first."""
        changes = self.changes[source.stream_key]
        return [changes[0][0], *(new for _, new, _ in changes)] if changes else [source.state]

    def close(self) -> None:
        """Stop every source and check each thread ended."""
        for source in self.sources:
            source.stop()
        for source in self.sources:
            assert source.join(5.0), f"{source.stream_key} did not stop"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def drain(source: Source, timeout: float = 3.0) -> list[Frame]:
    """Every frame until the source ends (read() gives None once it is done)."""
    frames = []
    while (frame := source.read(timeout)) is not None:
        frames.append(frame)
    return frames
