"""Validator and OrderResult: every status, aliases, quantities, accuracy, JSON round trip."""

from __future__ import annotations

import json

import pytest

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderResult, OrderStatus, QuantityMismatch
from edgeapp.engine.orders.validator import accuracy, validate
from edgeapp.engine.sources.synthetic import OrderTruth
from edgeapp.errors import InputError


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()  # the shipped demo: cola has the aliases coke and soda


ORDER = {"burger": 2, "cola": 1}


def test_exact_order_is_validated_with_full_accuracy(catalog):
    r = validate("925", ORDER, {"burger": 2, "cola": 1}, catalog, station_id="st-1")
    assert r.status is OrderStatus.VALIDATED and r.ok
    assert (r.missing, r.extra, r.quantity_mismatch) == ((), (), ())
    assert r.accuracy == 1.0
    assert r.order_id == "925" and r.station_id == "st-1" and r.reason is None


def test_aliases_and_case_map_to_the_inventory_name(catalog):
    r = validate("925", ORDER, {"Hamburger": 1, "cheeseburger": 1, "coke": 1}, catalog)
    assert r.status is OrderStatus.VALIDATED, "coke is cola; two burger aliases sum to 2"
    assert r.detected_items == {"burger": 2, "cola": 1}


def test_missing_item(catalog):
    r = validate("925", ORDER, {"burger": 2}, catalog)
    assert r.status is OrderStatus.MISMATCH and not r.ok
    assert r.missing == ("cola",) and r.extra == () and r.quantity_mismatch == ()
    assert r.accuracy == pytest.approx(2 / 3)


def test_extra_item_and_unknown_name_count_as_extra(catalog):
    r = validate("925", ORDER, {"burger": 2, "cola": 1, "fries": 1, " Pizza ": 1}, catalog)
    assert r.status is OrderStatus.MISMATCH
    assert r.extra == ("fries", "Pizza"), "a name in no inventory is kept raw (stripped)"
    assert r.detected_items == {"burger": 2, "cola": 1, "fries": 1, "Pizza": 1}
    assert r.accuracy == pytest.approx(3 / 5)


def test_quantity_mismatch_both_ways(catalog):
    r = validate("925", {"burger": 2, "cola": 1, "fries": 1}, {"burger": 1, "soda": 3,
                                                              "fries": 1}, catalog)
    assert r.status is OrderStatus.MISMATCH
    assert r.quantity_mismatch == (QuantityMismatch("burger", 2, 1), QuantityMismatch("cola", 1, 3))
    assert r.missing == () and r.extra == ()
    # matched = min(2,1) + min(1,3) + 1 = 3 units of max(4 expected, 5 detected)
    assert r.accuracy == pytest.approx(3 / 5)


def test_zero_counts_are_not_detections(catalog):
    r = validate("925", ORDER, {"burger": 2, "cola": 1, "fries": 0}, catalog)
    assert r.status is OrderStatus.VALIDATED


def test_empty_bag_is_mismatch_with_zero_accuracy(catalog):
    r = validate("925", ORDER, {}, catalog)
    assert r.status is OrderStatus.MISMATCH
    assert r.missing == ("burger", "cola") and r.accuracy == 0.0


def test_unknown_order_id_is_unreadable(catalog):
    expected = catalog.expected("999")
    assert expected is None
    r = validate("999", expected, {"burger": 1}, catalog)
    assert r.status is OrderStatus.UNREADABLE
    assert r.reason == "unknown order id 999"
    assert r.accuracy == 0.0 and r.expected_items == {}
    assert r.detected_items == {"burger": 1}, "what was seen is kept as evidence"


def test_unread_order_id_is_unreadable(catalog):
    r = validate(None, None, None, catalog, reason="ticket not visible")
    assert r.status is OrderStatus.UNREADABLE and r.order_id == ""
    assert r.reason == "order id not readable; ticket not visible"


def test_vlm_failure_is_failed_with_the_reason(catalog):
    r = validate("925", ORDER, None, catalog, reason="vlm answered garbage")
    assert r.status is OrderStatus.FAILED
    assert r.reason == "vlm answered garbage"
    assert r.expected_items == ORDER and r.detected_items == {} and r.accuracy == 0.0
    assert validate("925", ORDER, None, catalog).reason, "a failure always has a reason"


def test_real_order_from_catalog(catalog):
    order_id = sorted(catalog.orders)[0]
    expected = catalog.expected(order_id)
    r = validate(order_id, expected, dict(expected), catalog)
    assert r.ok and r.expected_items == expected


@pytest.mark.parametrize("detected", [{"burger": -1}, {"burger": "2"}, {"burger": True},
                                      {"": 1}])
def test_bad_detections_are_rejected(catalog, detected):
    with pytest.raises(InputError):
        validate("925", ORDER, detected, catalog)


def test_truth_verdict_gives_truth_correct(catalog):
    truth = OrderTruth("925", "st-1", ORDER, {"burger": 2}, "missing", 0, 10)
    wrong_bag = truth.packed
    r = validate("925", truth.expected, wrong_bag, catalog, truth_verdict=truth.verdict)
    assert r.truth_verdict == "mismatch" and r.truth_correct is True
    fooled = validate("925", truth.expected, ORDER, catalog, truth_verdict=truth.verdict)
    assert fooled.truth_correct is False, "saying validated for a wrong bag is wrong"
    failed = validate("925", truth.expected, None, catalog, truth_verdict=truth.verdict)
    assert failed.status is OrderStatus.FAILED and failed.truth_verdict == "mismatch"
    assert failed.truth_correct is None, "a failed order got no verdict: neither right nor wrong"
    assert validate("925", ORDER, ORDER, catalog).truth_correct is None


def test_accuracy_definition():
    assert accuracy({}, {}) == 1.0
    assert accuracy({"a": 2}, {"a": 2}) == 1.0
    assert accuracy({"a": 2}, {"a": 4}) == 0.5
    assert accuracy({"a": 1}, {"b": 1}) == 0.0


def test_result_round_trips_through_json(catalog):
    r = validate("925", {"burger": 2, "cola": 1}, {"burger": 1, "fries": 1}, catalog,
                 station_id="st-2", num_frames=4, latency_s=1.25,
                 timings={"select": 0.01, "vlm": 1.2}, evidence=["/tmp/a.jpg", "/tmp/b.jpg"],
                 truth_verdict="mismatch")
    back = OrderResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert isinstance(back.status, OrderStatus) and back.evidence == ("/tmp/a.jpg", "/tmp/b.jpg")
    assert r.to_dict()["quantity_mismatch"] == [{"name": "burger", "expected": 2, "detected": 1}]


def test_result_ids_are_unique_and_results_frozen(catalog):
    a = validate("925", ORDER, ORDER, catalog)
    b = validate("925", ORDER, ORDER, catalog)
    assert a.result_id != b.result_id and a.created_at > 0
    with pytest.raises(AttributeError):
        a.status = OrderStatus.FAILED  # type: ignore[misc]


@pytest.mark.parametrize(("key", "value"), [("status", "great"), ("accuracy", 1.5),
                                            ("latency_s", float("nan")), ("order_id", None)])
def test_from_dict_rejects_bad_data(catalog, key, value):
    data = validate("925", ORDER, ORDER, catalog).to_dict()
    if value is None:
        del data[key]
    else:
        data[key] = value
    with pytest.raises(InputError):
        OrderResult.from_dict(data)
