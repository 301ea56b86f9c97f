"""The dialects of the Work-API that one Producer and one Collector serve side by side.

Three kinds of worker speak to a Producer (``docs/work-api-dialects.md`` has them side by side):

- ``EDGEAPP``: this project's worker. Its REGISTER names it (``worker``, ``host``, ``pid``);
  it sends HEARTBEAT while busy and ``stats`` with every request, reads INFERENCE and
  ``CHANGE_WORK_LOAD``, and pushes detections naming itself, the stream and the sequence.
- ``SEED``: a worker written from the seed document's text: a bare REGISTER, INFERENCE
  replies, ``CHANGE_WORK_LOAD``, no heartbeats.
- ``THESIS``: the thesis' published worker. A bare REGISTER from a REQ socket it names
  ``worker-N`` (ZeroMQ's own identities start with a zero byte), ``previous_processing_time``
  with each GET_WORK, a ``type`` in each task's metadata, the reply type ``WORK``,
  ``CHANGE_INFERENCE_QUALITY``, no heartbeats; it pushes the processed frame back (uint8)
  under its task id without a sequence number, and END to the Collector when it stops.

The dialect is told at REGISTER and refined by the first GET_WORK (a bare REGISTER from a
socket ZeroMQ named turns out THESIS when ``previous_processing_time`` comes). Workers that
send no heartbeats are kept while they hold leases: their leases, not their silence, decide
when their tasks go back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from edgeapp.engine.distributed import protocol as p

#: The thesis worker's measure of its last task, sent with every GET_WORK.
PREVIOUS_PROCESSING_TIME = "previous_processing_time"
#: The thesis code's key for a grade change in a CHANGE reply.
CHANGE_INFERENCE_QUALITY = "CHANGE_INFERENCE_QUALITY"


class Dialect(str, enum.Enum):
    """Which worker code a registered peer runs (see the module docstring)."""

    EDGEAPP = "edgeapp"
    SEED = "seed"
    THESIS = "thesis"

    @property
    def heartbeats(self) -> bool:
        """Whether this worker promises a request at least every ``heartbeat_s``."""
        return self is Dialect.EDGEAPP

    @property
    def names_itself(self) -> bool:
        """Whether its results say which worker sent them (``worker`` in the info part)."""
        return self is Dialect.EDGEAPP


def at_register(msg: Mapping[str, Any], identity: bytes) -> Dialect:
    """The dialect of a REGISTER: edgeapp workers name themselves; the thesis code names its
    socket; anything else speaks the seed's text."""
    if "worker" in msg or msg.get("dialect") == Dialect.EDGEAPP.value:
        return Dialect.EDGEAPP
    if identity[:1] != b"\0":
        return Dialect.THESIS
    return Dialect.SEED


def on_get_work(dialect: Dialect, msg: Mapping[str, Any]) -> Dialect:
    """A seed-looking worker whose GET_WORK carries ``previous_processing_time`` is THESIS."""
    if dialect is Dialect.SEED and PREVIOUS_PROCESSING_TIME in msg:
        return Dialect.THESIS
    return dialect


def work_reply_type(dialect: Dialect) -> str:
    """The type of a reply that carries tasks."""
    return p.WORK if dialect is Dialect.THESIS else p.INFERENCE


def change_reply(dialect: Dialect, grade: int) -> bytes:
    """CHANGE to ``grade``, under the key this dialect acts on."""
    if dialect is Dialect.THESIS:
        return p.message(p.CHANGE, **{CHANGE_INFERENCE_QUALITY: grade})
    if dialect is Dialect.SEED:
        return p.message(p.CHANGE, CHANGE_WORK_LOAD=grade)
    return p.message(p.CHANGE, CHANGE_WORK_LOAD=grade, work_load=grade)


def stranger_reply(msg: Mapping[str, Any]) -> bytes:
    """What a peer that is not registered gets for GET_WORK or HEARTBEAT.

    An edgeapp worker (it sends ``stats``) registers again on ``ERROR not_registered``. The
    seed's and the thesis' workers register only at their start and know no ERROR (the
    thesis code asks again at once, for ever); what they do understand is END.
    """
    if "stats" in msg:
        return p.error_reply(p.REJECT_NOT_REGISTERED)
    return p.message(p.END)
