"""The verdict on one packed order: what was expected, what was seen, and how they differ."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgeapp.errors import InputError


class OrderStatus(str, Enum):
    """How an order ended: checked and right, checked and wrong, or not checkable."""

    VALIDATED = "validated"  # the bag holds exactly the order
    MISMATCH = "mismatch"  # something is missing, extra or of the wrong quantity
    UNREADABLE = "unreadable"  # the order id is unknown or could not be read
    FAILED = "failed"  # the item list could not be obtained (VLM error, timeout, crash)


@dataclass(frozen=True)
class QuantityMismatch:
    """An item both ordered and seen, in a different quantity."""

    name: str
    expected: int
    detected: int

    def to_dict(self) -> dict[str, Any]:
        """``{name, expected, detected}``."""
        return {"name": self.name, "expected": self.expected, "detected": self.detected}


@dataclass(frozen=True, kw_only=True)
class OrderResult:
    """One order's verdict (DESIGN §5); built by ``validator.validate``, kept by the store.

    ``accuracy`` is matched units / max(expected units, detected units), where matched units
    are ``sum(min(expected[n], detected[n]))`` over item names and detected units include
    extras not in the inventory: 1.0 for a perfect order, 0.0 when nothing matches, and 0.0
    for ``unreadable`` / ``failed`` (nothing was verified). ``truth_verdict`` is the right
    verdict when the camera knows it (the synthetic camera, a recorded clip with its
    ``.truth.json``); ``truth_correct`` says whether ``status`` equals it. An unreadable order
    is a verdict, never a right one; a ``failed`` order got no verdict, so its
    ``truth_correct`` is None: it is counted by its reason, not as right or wrong.

    Mapping fields are plain dicts so the result is JSON-friendly; treat them as read-only.
    """

    order_id: str
    station_id: str
    expected_items: dict[str, int]
    detected_items: dict[str, int]
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    quantity_mismatch: tuple[QuantityMismatch, ...] = ()
    status: OrderStatus
    accuracy: float = 0.0
    num_frames: int = 0
    latency_s: float | None = None  # order end -> verdict; None when not measured
    timings: dict[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    reason: str | None = None
    truth_verdict: str | None = None
    truth_correct: bool | None = None
    result_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Normalise containers so a result built from JSON equals the one that was saved.
        setattr_ = object.__setattr__
        try:
            setattr_(self, "status", OrderStatus(self.status))
        except ValueError:
            raise InputError(f"OrderResult: unknown status {self.status!r}") from None
        setattr_(self, "missing", tuple(self.missing))
        setattr_(self, "extra", tuple(self.extra))
        setattr_(self, "evidence", tuple(str(p) for p in self.evidence))
        setattr_(self, "quantity_mismatch", tuple(_mismatch(m) for m in self.quantity_mismatch))
        setattr_(self, "expected_items", dict(self.expected_items))
        setattr_(self, "detected_items", dict(self.detected_items))
        setattr_(self, "timings", {str(k): float(v) for k, v in self.timings.items()})
        if not (0.0 <= self.accuracy <= 1.0):
            raise InputError(f"OrderResult: accuracy {self.accuracy!r} is not in 0..1")
        if self.latency_s is not None and not math.isfinite(self.latency_s):
            raise InputError(f"OrderResult: latency_s {self.latency_s!r} is not finite")

    @property
    def ok(self) -> bool:
        """True when the order was checked and is right."""
        return self.status is OrderStatus.VALIDATED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists, not tuples; the status as its string)."""
        return {
            "result_id": self.result_id,
            "created_at": self.created_at,
            "order_id": self.order_id,
            "station_id": self.station_id,
            "status": self.status.value,
            "expected_items": dict(self.expected_items),
            "detected_items": dict(self.detected_items),
            "missing": list(self.missing),
            "extra": list(self.extra),
            "quantity_mismatch": [m.to_dict() for m in self.quantity_mismatch],
            "accuracy": self.accuracy,
            "num_frames": self.num_frames,
            "latency_s": self.latency_s,
            "timings": dict(self.timings),
            "evidence": list(self.evidence),
            "reason": self.reason,
            "truth_verdict": self.truth_verdict,
            "truth_correct": self.truth_correct,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderResult:
        """Rebuild a result from ``to_dict()`` output; unknown keys are ignored."""
        known = cls.__dataclass_fields__
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            rid = data.get("result_id", "?")
            raise InputError(f"OrderResult {rid}: cannot rebuild from its dict: {exc}") from None


def _mismatch(value: QuantityMismatch | Mapping[str, Any] | Iterable[Any]) -> QuantityMismatch:
    if isinstance(value, QuantityMismatch):
        return value
    if isinstance(value, Mapping):
        return QuantityMismatch(
            str(value["name"]), int(value["expected"]), int(value["detected"])
        )
    name, expected, detected = value
    return QuantityMismatch(str(name), int(expected), int(detected))
