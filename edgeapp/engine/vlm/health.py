"""Whether the VLM answers: one notification when it stops answering, one when it is back.

Every answer the batcher delivers is a sample. A failed one (server unreachable, garbage,
timing out, an HTTP or backend error) starts a failure of its kind, told once however many
orders it fails; another kind of failure is told too (the server was down, now it hangs); the
first good answer after a failure tells that the VLM answers again, and how many orders
failed meanwhile. Answers the batcher gives while stopping are no sign either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edgeapp.engine.api import Notification, Severity
from edgeapp.engine.vlm.request import STOPPED, TIMEOUT, VlmAnswer

PART = "vlm"

# Error texts by how they start (request.py lists the texts backends give) -> what it means.
_KINDS = (
    ("server unreachable", "VLM server unreachable"),
    ("http error", "VLM server answers with an HTTP error"),
    ("garbage response", "VLM server answers garbage"),
    ("unparseable answer", "VLM answers garbage"),
    ("empty answer", "VLM answers nothing"),
    ("backend error", "VLM backend failing"),
)


def failure_of(answer: VlmAnswer, timeout_s: float | None = None) -> str | None:
    """What the VLM's failure looks like to an operator, or None for a usable answer."""
    if answer.items is not None and answer.error is None:
        return None
    error = answer.error or "no item list"
    if error == TIMEOUT:
        within = f" within {timeout_s:g} s" if timeout_s else ""
        return f"VLM timing out: no answer{within}"
    for prefix, meaning in _KINDS:
        if error.startswith(prefix):
            detail = error[len(prefix):].lstrip(": ")
            return f"{meaning}: {detail}" if detail else meaning
    return f"VLM failing: {error}"


class VlmHealth:
    """Turns the stream of answers into start / recovery notifications (thread-safe)."""

    def __init__(self, publish: Callable[[Notification], None],
                 timeout_s: float | None = None) -> None:
        self._publish = publish
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._failing: str | None = None  # the failure's kind, while it lasts
        self._failed = 0  # answers failed since it started

    @property
    def failing(self) -> bool:
        """Whether the last answer (not counting stop) was a failure."""
        return self._failing is not None

    def observe(self, answer: VlmAnswer) -> None:
        """One more delivered answer."""
        if answer.error == STOPPED:
            return
        text = failure_of(answer, self._timeout_s)
        with self._lock:
            if text is None:
                if self._failing is None:
                    return
                failed, self._failing, self._failed = self._failed, None, 0
                note = Notification(Severity.INFO, f"VLM answers again ({failed} order"
                                                   f"{'s' if failed != 1 else ''} failed "
                                                   "meanwhile)", PART)
            else:
                kind = text.split(":", 1)[0]
                self._failed += 1
                if kind == self._failing:
                    return
                self._failing = kind
                note = Notification(Severity.ERROR, f"{text} (orders fail until it answers)",
                                    PART)
        self._publish(note)
