"""The contract between the VLM batcher and whatever answers its batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from edgeapp.engine.vlm.request import VlmAnswer, VlmRequest


@runtime_checkable
class Backend(Protocol):
    """Turns a whole batch of requests into answers.

    Contract (the batcher relies on it):
    - ``infer_batch`` gets the batch at once, so a backend can run it as one model call
      (``local``) or overlap one call per request (``openai``).
    - It returns one ``VlmAnswer`` per request, matched by ``request_id`` (order is free).
      A per-request failure is an answer with ``items=None`` and ``error`` set, not an
      exception. An exception fails every request of the batch with
      ``"backend error: ..."``; a request left without an answer fails with
      ``"backend returned no answer"``; answers for unknown ids are dropped.
    - It should give up on a request once ``request.deadline`` has passed (the batcher
      answers ``"timeout"`` at the deadline anyway, but a hung call keeps its in-flight
      slot until it returns).
    - It may be called from several threads at once (up to the batcher's
      ``max_in_flight``).
    - The batcher fills ``batch_size``, ``queued_s`` and ``latency_s`` of the answers.
    """

    name: str

    def infer_batch(self, requests: Sequence[VlmRequest]) -> list[VlmAnswer]:
        """One answer per request of the batch."""
        ...

    def close(self) -> None:
        """Release connections, threads, models; its owner calls it after the batcher joined."""
        ...
