"""How the Producer and the Collector of one engine process keep each other informed.

The Producer tells the Collector which frames to wait for (``expect``) and which will never
come (``cancel``: dropped from a full queue, failed too often, abandoned at stop), so the
Collector's reordering never waits for a frame that is not on its way. The Collector tells
the Producer which tasks arrived (acks), which ends their leases. Both calls are plain,
thread-safe method calls: the two live in the same process (``Producer.attach_collector``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TaskListener(Protocol):
    """Who needs to know which frames to wait for (the Collector)."""

    def expect(self, stream_key: str, seq: int) -> None:
        """A frame of ``stream_key`` was queued for detection."""

    def cancel(self, stream_key: str, seq: int) -> None:
        """That frame will not come."""


#: Called with the task ids whose results reached the Collector.
AckListener = Callable[[list[int]], None]
