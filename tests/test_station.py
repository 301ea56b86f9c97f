"""A station's main loop in-process (a thread and a Pipe), with this test as its engine."""

from __future__ import annotations

from typing import Any

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import short_dir, truth_orders
from station_helpers import StationHarness

from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.paths import demo_inventory_path, demo_orders_path

SEED, WRONG = 5, 0.5


def test_station_checks_an_order_and_a_stop_mid_order_fails_it_without_a_truth():
    # Given a station run in-process, fed by a real detector, and a VLM that answers with
    # what was really packed
    truth = truth_orders(SEED, WRONG)
    settings = StationSettings(
        name="s", source="synthetic", orders_path=demo_orders_path(),
        inventory_path=demo_inventory_path(), data_dir=short_dir(), ticket_class=12,
        seed=SEED, wrong_order_rate=WRONG, fps_level=0.33)

    def react(msg: Any) -> None:
        # When the station is stopped with the next order on its counter
        if isinstance(msg, m.OrderUpdate) and msg.order_id and harness.results():
            harness.send(m.Stop(finish_order=False, deadline_s=0.0))

    with StationHarness(settings, answer=lambda ask: dict(truth[ask.order_id].packed),
                        react=react) as harness:
        harness.serve(lambda: not harness.thread.is_alive() and not harness.engine_end.poll(0),
                      120, "the station to stop")
        results = harness.results()

    # Then the order it saw end has the right verdict, and the one cut short is failed with
    # the reason and no truth to be judged against
    first, last = results[0], results[-1]
    assert first.status.value == truth[first.order_id].verdict and first.truth_correct, first
    assert last.status is OrderStatus.FAILED and last.reason == "station stopped", last
    assert last.truth_verdict is None and last.truth_correct is None
