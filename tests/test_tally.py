"""Verdict accuracy is one rule: right verdicts among the orders that got one; a failed order
— whatever failed — is neither right nor wrong, and is counted by its reason."""

from __future__ import annotations

import pytest

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.orders.validator import validate
from edgeapp.engine.tally import RunTally, failure_kind

ORDER = {"burger": 2, "cola": 1}


def test_accuracy_counts_verdicts_and_every_failure_alike_by_its_reason():
    catalog = load_catalog()
    tally = RunTally()
    # Given two right verdicts, a wrong one and an unreadable ticket (a verdict, never right)
    tally.add_result(validate("925", ORDER, ORDER, catalog, truth_verdict="validated"))
    tally.add_result(validate("925", ORDER, {"burger": 2}, catalog, truth_verdict="mismatch"))
    tally.add_result(validate("925", ORDER, {"burger": 1}, catalog, truth_verdict="validated"))
    tally.add_result(validate(None, None, None, catalog, truth_verdict="validated"))
    # And orders failed by the VLM, by the camera, by the file's end and by a crash
    for reason in ("timeout", "server unreachable: http://vlm:8000: refused",
                   "camera offline: rtsp://cam/1: stream lost", "source ended"):
        tally.add_result(validate("925", ORDER, None, catalog, reason=reason,
                                  truth_verdict="validated"))
    tally.add_result(OrderResult(order_id="925", station_id="s", expected_items=ORDER,
                                 detected_items={}, status=OrderStatus.FAILED,
                                 reason="station crashed (killed by SIGKILL) while the order "
                                        "was in progress"))

    summary = tally.summary(end=0.0)

    # Then accuracy is 2 right of the 4 verdicts, and each failure is counted by its kind
    assert summary["judged"] == 4 and summary["correct"] == 2
    assert summary["verdict_accuracy"] == pytest.approx(0.5)
    assert summary["by_status"]["failed"] == 5
    assert summary["failed_by_reason"] == {
        "timeout": 1, "server unreachable": 1, "camera offline": 1, "source ended": 1,
        "station crashed": 1}


@pytest.mark.parametrize(("reason", "kind"), [
    ("camera offline: http://127.0.0.1:8/stream.mjpg: stream lost", "camera offline"),
    ("station stopped", "station stopped"),
    ("garbage response; the VLM also named: pizza", "garbage response"),
    (None, "unknown"),
])
def test_failure_kind_is_the_reason_up_to_its_detail(reason, kind):
    assert failure_kind(reason) == kind


def test_the_controller_judges_only_the_order_latency_the_streams_can_shorten():
    catalog = load_catalog()
    tally = RunTally()
    # Given an order judged in 1.2 s of which the VLM's answer took 1.0 s, and one that
    # failed after 10 s because the VLM did not answer
    judged = validate("925", ORDER, ORDER, catalog, latency_s=1.2, timings={"vlm_s": 1.0})
    failed = validate("925", ORDER, None, catalog, reason="timeout", latency_s=10.0,
                      timings={"vlm_s": 10.0})
    tally.add_result(judged)
    tally.add_result(failed)

    interval = tally.take_interval()

    # Then the SLO shows the worst of all, but the streams' part leaves out the failed order,
    # and the answer time of a VLM that does not share these cores
    assert max(interval.order_latencies) == 10.0
    assert interval.streams_part(vlm_shares_cpu=True) == pytest.approx(1.2)
    assert interval.streams_part(vlm_shares_cpu=False) == pytest.approx(0.2)
    assert tally.take_interval().streams_part(vlm_shares_cpu=True) is None, "taken once"
