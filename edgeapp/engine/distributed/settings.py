"""Settings of the Producer and the Collector, as typed, frozen records with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeapp.engine.distributed.protocol import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class ProducerSettings:
    """How the Producer binds, batches, leases and ends (times in seconds)."""

    address: str = "tcp://127.0.0.1:*"
    work_type: str = "YOLO_DETECTION"
    grade: int = 1  # work_load at start: 0 LOW, 1 MEDIUM, 2 HIGH
    loading_mode: int = 1  # 0 LAZY, 1 EAGER
    batch_size: int = 4  # most tasks per INFERENCE reply
    queue_size: int = 64  # frames waiting, over all streams
    lease_s: float = 10.0  # a handed-out task goes back to the queue after this
    heartbeat_s: float = 0.5  # workers send a request at least this often ...
    liveness: int = 3  # ... and are dropped after this many silent intervals (tasks requeued);
    # workers that send no heartbeats (the seed's, the thesis' code) are kept while they hold
    # leases, and each lease goes back after lease_s
    hold_s: float = 0.1  # a GET_WORK with nothing to do waits this long, then NO_WORK
    stranger_hold_s: float = 0.5  # an unregistered peer's answer waits this long (rate limit)
    max_attempts: int = 3  # hand-outs of one task before it counts as failed
    end_timeout_s: float | None = None  # END phase at most (None: 2 heartbeats + 0.5 s)
    end_grace_s: float = 0.0  # END phase at least, for workers that join late
    collector_address: str | None = None  # told to workers (None: the attached Collector's)
    keys_dir: str | Path | None = None  # CURVE keys (``edgeapp keys``); None: plain TCP
    insecure: bool = False  # allow a non-loopback bind without keys
    limits: Limits = DEFAULT_LIMITS
    confirmation_extra: dict[str, Any] = field(default_factory=dict)  # e.g. input_size

    @property
    def end_timeout(self) -> float:
        """The END phase's upper bound."""
        base = (2 * self.heartbeat_s + self.hold_s + 0.5) if self.end_timeout_s is None \
            else self.end_timeout_s
        return max(base, self.end_grace_s)


@dataclass(frozen=True)
class CollectorSettings:
    """How the Collector binds, reorders and bounds its memory (times in seconds)."""

    address: str = "tcp://127.0.0.1:*"
    # A missing frame is skipped after this. Frames of a worker that died come back after
    # heartbeat_s * liveness plus their processing time: keep this above that to get them.
    reorder_timeout_s: float = 2.0
    max_pending_per_stream: int = 1024  # frames waited for or held back, per stream
    max_streams: int = 256  # streams tracked at once; an idle one gives its slot up
    stream_idle_s: float = 30.0  # a stream with nothing expected or held for this long is freed
    max_result_bytes: int = 8 * 1024 * 1024  # one inbound message part at most
    keys_dir: str | Path | None = None
    insecure: bool = False
    limits: Limits = DEFAULT_LIMITS
