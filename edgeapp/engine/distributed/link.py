"""How the Producer and the Collector of one engine process keep each other informed.

The Producer tells the Collector which frames to wait for (``expect``) and which will never
come (``cancel``: dropped from a full queue, failed too often, abandoned at stop), so the
Collector's reordering never waits for a frame that is not on its way. The Collector asks the
Producer whether a result answers a task out right now (``claim``), which ends its lease;
a stopped Producer still answers, so the last results of a worker sent END count. All of it
is plain, thread-safe method calls: the two live in one process (``Producer.attach_collector``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class TaskListener(Protocol):
    """Who needs to know which frames to wait for (the Collector)."""

    def expect(self, stream_key: str, seq: int) -> bool:
        """A frame of ``stream_key`` was queued for detection; False: no slot for the stream."""

    def cancel(self, stream_key: str, seq: int) -> None:
        """That frame will not come."""


#: ``claim(task_id, stream_key, seq, worker, user_id) -> (lease or None, reject reason)``:
#: the fields a result carries (None where its dialect sends none) and the CURVE key it came
#: with; see ``WorkerBook.claim``.
LeaseAuthority = Callable[[int, "str | int | None", "int | None", "str | None", str],
                          tuple[Any, str]]
