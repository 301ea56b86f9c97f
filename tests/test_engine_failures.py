"""Bad input through the whole engine: a VLM server that answers garbage, is slow or is down
(the openai backend against a real local HTTP server), and tickets nobody can read."""

from __future__ import annotations

import os

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import EventLog, engine_config, engine_threads, short_dir
from ovms_server import OvmsServer

from edgeapp.engine.api import StationState
from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderStatus


def test_vlm_garbage_slow_and_down_fail_orders_with_the_reason_and_unreadable_tickets_keep_frames():
    # Given a VLM server answering garbage, a normal camera, and a camera so small (320x180)
    # that its ticket print is below what OCR reads safely
    server = OvmsServer().start()
    server.mode = "garbage"
    root = short_dir()
    config = engine_config(
        root, [{"name": "cam", "seed": 1}, {"name": "tiny", "seed": 2, "width": 320,
                                             "height": 180}],
        vlm={"backend": "openai", "url": server.url, "timeout_s": 2.0})
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    try:
        engine.start()

        # When the garbage answer comes, then the order is failed with that reason
        log.wait(lambda: len(log.results("cam")) >= 1, 120, "a verdict at cam")
        first = log.results("cam")[0]
        assert first.status is OrderStatus.FAILED and "garbage" in (first.reason or ""), first
        assert first.expected_items and first.evidence, "what was expected and seen is kept"

        # When the server is slower than the deadline, then the order fails as a timeout
        server.mode, server.delay_s = "normal", 5.0
        log.wait(lambda: len(log.results("cam")) >= 2, 60, "a second verdict at cam")
        second = log.results("cam")[1]
        assert second.status is OrderStatus.FAILED and second.reason == "timeout", second

        # When the server is down, then the order fails as unreachable
        server.stop()
        log.wait(lambda: len(log.results("cam")) >= 3, 60, "a third verdict at cam")
        third = log.results("cam")[2]
        assert third.status is OrderStatus.FAILED and "unreachable" in (third.reason or ""), \
            third

        # And the tiny camera's orders are unreadable, with their frames kept as evidence
        log.wait(lambda: len(log.results("tiny")) >= 1, 60, "a verdict at tiny")
        for r in log.results("tiny"):
            assert r.status is OrderStatus.UNREADABLE, r
            assert (r.reason or "").startswith("order id not readable"), r
            assert r.evidence and all(os.path.exists(p) for p in r.evidence)
            assert r.truth_correct is False, "an unreadable order is never a right verdict"
        assert engine.running and all(s.state is StationState.RUNNING
                                  for s in engine.status().stations)
    finally:
        engine.stop(timeout=20, finish_orders=False)
        server.stop()
    assert not engine_threads(), engine_threads()
