"""A station's main loop in-process (a thread and a Pipe), with this test as its engine."""

from __future__ import annotations

import multiprocessing
import threading
import time

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import short_dir, truth_orders

from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.engine.stations.station import Station
from edgeapp.engine.vision.detector import open_detector
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
    engine_end, station_end = multiprocessing.Pipe()
    station = Station(settings, station_end)
    thread = threading.Thread(target=station.run, name="station-under-test")
    thread.start()
    rings: dict[str, FrameRing] = {}
    results: list[OrderResult] = []
    busy_after_result = False
    detector = open_detector()
    try:
        deadline = time.monotonic() + 120
        while thread.is_alive() and time.monotonic() < deadline:
            if not engine_end.poll(0.1):
                continue
            msg = engine_end.recv()
            if isinstance(msg, m.RingOpened):
                rings[msg.kind] = FrameRing.attach(msg.spec)
            elif isinstance(msg, m.FrameReady):
                frame = rings["live"].read(msg.slot, msg.seq)
                if frame is not None:
                    engine_end.send(m.Detections(msg.seq, detector.detect(frame.image)))
            elif isinstance(msg, m.VlmAsk):
                frames = [rings["order"].read(slot, seq) for slot, seq in
                          zip(msg.slots, msg.seqs, strict=True)]
                assert all(f is not None for f in frames), "the order's frames are in the ring"
                packed = truth[msg.order_id].packed
                engine_end.send(m.VlmReply(msg.request_id, dict(packed), None))
            elif isinstance(msg, m.ResultReady):
                results.append(OrderResult.from_dict(msg.result))
            elif isinstance(msg, m.OrderUpdate) and msg.order_id and results and \
                    not busy_after_result:
                # When the station is stopped with the next order on its counter
                busy_after_result = True
                engine_end.send(m.Stop(finish_order=False, deadline_s=0.0))
        thread.join(10)
        assert not thread.is_alive(), "the station's loop ended"
    finally:
        station.stop()
        thread.join(10)
        detector.close()
        for ring in rings.values():
            ring.close()
            ring.unlink()
        engine_end.close()

    # Then the order it saw end has the right verdict, and the one cut short is failed with
    # the reason and no truth to be judged against
    first, last = results[0], results[-1]
    assert first.status.value == truth[first.order_id].verdict and first.truth_correct, first
    assert last.status is OrderStatus.FAILED and last.reason and "cut short" in last.reason, last
    assert last.truth_verdict is None and last.truth_correct is None
