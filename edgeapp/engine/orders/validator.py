"""Compare the items seen in a bag with the order: missing, extra, wrong quantity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from edgeapp.engine.orders.result import OrderResult, OrderStatus, QuantityMismatch
from edgeapp.errors import InputError


class NameLookup(Protocol):
    """What the validator needs from a catalog: name/alias → inventory name."""

    def canonical(self, name: str) -> str | None:
        """The inventory name for ``name`` or one of its aliases, else None."""
        ...


def validate(
    order_id: str | None,
    expected: Mapping[str, int] | None,
    detected: Mapping[str, int] | None,
    catalog: NameLookup,
    *,
    station_id: str = "",
    num_frames: int = 0,
    latency_s: float | None = None,
    timings: Mapping[str, float] | None = None,
    evidence: Iterable[str] = (),
    reason: str | None = None,
    truth_verdict: str | None = None,
) -> OrderResult:
    """Judge one order and return its ``OrderResult``.

    - ``expected is None`` (the order id is unknown or unread): ``unreadable``; the reason
      names the id (any ``reason`` passed in is appended).
    - ``detected is None`` (the VLM / detector gave no usable answer): ``failed`` with
      ``reason`` (e.g. "timeout", "vlm answered garbage").
    - Otherwise names on both sides are mapped to the inventory by name or alias
      (``coke`` → ``cola``), counts of names that map to the same item are summed, and a
      detected name that is in no inventory is kept under its own name and counted as
      **extra**: something that is not on the menu in the bag is a packing error.
      Status is ``validated`` iff nothing is missing, extra or of the wrong quantity.

    Accuracy is defined on ``OrderResult``. ``truth_verdict`` (the camera's right verdict,
    when known) gives ``truth_correct`` for a verdict (validated, mismatch, unreadable); a
    ``failed`` order got no verdict, so it is neither right nor wrong (``None``): the one rule
    of verdict accuracy (README, "Verdict accuracy").
    """
    oid = "" if order_id is None else str(order_id)
    want: dict[str, int] = {}
    seen: dict[str, int] = {}
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    mismatch: tuple[QuantityMismatch, ...] = ()
    score = 0.0  # nothing verified for unreadable / failed orders
    if expected is None:
        what = f"unknown order id {oid}" if oid else "order id not readable"
        reason = f"{what}; {reason}" if reason else what
        status = OrderStatus.UNREADABLE
        if detected:  # kept as evidence of what was in the bag
            seen = _canonical_counts(detected, catalog, "detected")
    elif detected is None:
        want = _canonical_counts(expected, catalog, "expected")
        reason = reason or "no item list from the VLM"
        status = OrderStatus.FAILED
    else:
        want = _canonical_counts(expected, catalog, "expected")
        seen = _canonical_counts(detected, catalog, "detected")
        missing = tuple(name for name in want if name not in seen)
        extra = tuple(name for name in seen if name not in want)
        mismatch = tuple(
            QuantityMismatch(name, want[name], seen[name])
            for name in want
            if name in seen and seen[name] != want[name]
        )
        wrong = bool(missing or extra or mismatch)
        status = OrderStatus.MISMATCH if wrong else OrderStatus.VALIDATED
        score = accuracy(want, seen)
    return OrderResult(
        order_id=oid,
        station_id=str(station_id),
        expected_items=want,
        detected_items=seen,
        missing=missing,
        extra=extra,
        quantity_mismatch=mismatch,
        status=status,
        accuracy=score,
        num_frames=int(num_frames),
        latency_s=latency_s,
        timings=dict(timings or {}),
        evidence=tuple(evidence),
        reason=reason,
        truth_verdict=truth_verdict,
        truth_correct=(None if truth_verdict is None or status is OrderStatus.FAILED
                       else status.value == truth_verdict),
    )


def accuracy(expected: Mapping[str, int], detected: Mapping[str, int]) -> float:
    """Matched units / max(expected units, detected units); 1.0 when both are empty."""
    matched = sum(min(qty, detected.get(name, 0)) for name, qty in expected.items())
    total = max(sum(expected.values()), sum(detected.values()))
    return 1.0 if total == 0 else matched / total


def _canonical_counts(
    items: Mapping[str, int], catalog: NameLookup, side: str
) -> dict[str, int]:
    """Map names to inventory names (unknown: stripped raw name), sum, drop zero counts."""
    counts: dict[str, int] = {}
    for raw, qty in items.items():
        if not isinstance(raw, str) or not raw.strip():
            raise InputError(f"validator: {side} item name {raw!r} is not a non-empty string")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise InputError(f"validator: {side} quantity of {raw!r} is {qty!r}, not an int >= 0")
        if qty == 0:
            continue
        name = catalog.canonical(raw) or raw.strip()
        counts[name] = counts.get(name, 0) + qty
    return counts

