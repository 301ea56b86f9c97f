"""``edgeapp bench orders``: the order flow offline judges a scene's orders against its truth
and lists every wrong verdict with what was packed and what the VLM saw."""

from __future__ import annotations

import json

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import truth_orders

from edgeapp import cli
from edgeapp.engine.bench.orders import why_wrong


def test_a_tiny_run_judges_the_scenes_orders_against_their_truth(capsys) -> None:
    code = cli.main(["bench", "orders", "--json", "--seeds", "5", "--orders", "2"])
    out, _ = capsys.readouterr()
    assert code == 0
    result = json.loads(out)

    # The scene's first two orders were judged, each against its own truth
    truth = truth_orders(5, 0.2, 3)
    assert result["orders"] == 2 and result["judged"] == 2, result
    assert result["right"] + len(result["wrong"]) == result["judged"]
    assert result["verdict_accuracy"] == result["right"] / result["judged"]
    assert sum(result["by_status"].values()) == 2
    for wrong in result["wrong"]:
        assert wrong["order"] in truth and wrong["packed"] == truth[wrong["order"]].packed


def test_why_wrong_names_the_items_miscounted():
    record = {"status": "mismatch", "order_id": "7", "truth_order": "7",
              "packed": {"coffee": 1, "salad": 3}, "detected": {"cola": 1, "salad": 4}}
    assert why_wrong(record) == "coffee 0 of 1, cola 1 of 0, salad 4 of 3"
