"""An order is judged only from a whole stream: a camera that drops mid-order, a file that
ends mid-order, and a recorded clip scored against its truth (a station in-process, real
detector, a real MJPEG server on loopback)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import short_dir, truth_orders
from mjpeg_server import MjpegServer
from station_helpers import StationHarness, first_index

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.sources.record import record_synthetic
from edgeapp.engine.sources.synthetic import SyntheticScene
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.paths import demo_inventory_path, demo_orders_path

FPS = 15.0


def _settings(source: str, **kw: Any) -> StationSettings:
    return StationSettings(name="s", source=source, orders_path=demo_orders_path(),
                           inventory_path=demo_inventory_path(), data_dir=short_dir(),
                           ticket_class=12, fps=FPS, fps_level=1.0, **kw)


def test_a_recorded_clip_is_scored_against_its_truth_and_its_end_fails_the_open_order(
        tmp_path: Path) -> None:
    # Given a clip `edgeapp record` wrote, with its truth beside it, that ends halfway
    # through its second order
    seed, wrong = 3, 0.5
    first, second = sorted(truth_orders(seed, wrong, 2).values(), key=lambda o: o.start_frame)
    end_frame = (second.start_frame + second.end_frame) // 2
    clip = tmp_path / "clip.avi"
    record_synthetic(clip, end_frame / FPS, load_catalog(), fps=FPS, seed=seed,
                     wrong_order_rate=wrong)

    # When a station plays it and nobody asks it to stop
    def second_failed() -> bool:
        return any(r.status is OrderStatus.FAILED for r in harness.results())

    with StationHarness(_settings(str(clip))) as harness:
        harness.serve(second_failed, 90, "the cut order to fail")

        # Then the order it saw whole has a verdict scored against the recorded truth
        results = harness.results()
        judged = results[0]
        assert judged.order_id == first.order_id, results
        assert judged.truth_verdict == first.verdict and judged.truth_correct is not None, \
            judged
        # And the order the file cut is failed "source ended" on its own, once the file
        # ended (not when the station is stopped), with no truth to be judged against
        cut = results[-1]
        assert cut.status is OrderStatus.FAILED and cut.reason == "source ended", cut
        assert cut.order_id in ("", second.order_id) and cut.truth_correct is None, cut
        ended = first_index(harness.messages, lambda x: isinstance(x, m.SourceStateChanged)
                            and x.state == "ended")
        failed = first_index(harness.messages, lambda x: isinstance(x, m.ResultReady)
                             and x.result["reason"] == "source ended")
        assert ended < failed < len(harness.messages), "failed after the end, by itself"
        assert not any(isinstance(x, m.Stop) for x in harness.messages)
        # And the station counts the clip's orders as the synthetic camera's
        harness.serve(lambda: any(s.truth_orders == 1 for s in harness.of(m.StationStats)),
                      10, "stats counting the clip's one whole order")


class _Counter:
    """The synthetic counter, drawn frame after frame as the server sends them: while the
    camera is away, the world waits, so the order is still on the counter when it is back."""

    def __init__(self, seed: int) -> None:
        self.scene = SyntheticScene(load_catalog(), seed=seed, wrong_order_rate=0.5)
        self._lock = threading.Lock()

    def __call__(self, _index: int) -> np.ndarray:
        with self._lock:
            image, _ = self.scene.render()
            return image


def test_a_camera_that_drops_mid_order_holds_it_then_carries_on_or_fails_it_camera_offline():
    # Given a station watching a real MJPEG camera, whose open order waits 4 s for it
    server = MjpegServer(fps=FPS, frames=_Counter(seed=8)).start()
    plan: dict[str, Any] = {"short": None, "long": None, "last_seq": -1, "down": False}

    def react(msg: Any) -> None:
        if isinstance(msg, m.FrameReady):
            plan["last_seq"] = msg.seq
        elif isinstance(msg, m.OrderUpdate) and msg.busy and msg.order_id:
            # When the camera drops just after an order's ticket was read: the first time
            # for a moment, the second time for longer than the hold
            if plan["short"] is None:
                plan["short"], plan["drop_seq"], plan["down"] = msg.order_id, plan["last_seq"], \
                    True
                server.stop()
            elif plan["long"] is None and msg.order_id != plan["short"] and \
                    harness.results():
                plan["long"], plan["down"] = msg.order_id, True
                server.stop()
        elif isinstance(msg, m.SourceStateChanged) and msg.state == "reconnecting" and \
                plan["long"] is None and plan["down"]:
            plan["down"] = False
            server.start()
        elif isinstance(msg, m.ResultReady) and plan["long"] is not None and \
                msg.result["order_id"] == plan["long"] and plan["down"]:
            plan["down"] = False
            server.start()

    def verdict_after_the_long_drop() -> bool:
        results = harness.results()
        return plan["long"] is not None and any(
            r.order_id not in (plan["short"], plan["long"]) and r.status is not
            OrderStatus.FAILED for r in results[2:])

    try:
        with StationHarness(_settings(server.url, camera_hold_s=4.0), react=react) as harness:
            harness.serve(verdict_after_the_long_drop, 180, "a verdict after the long drop")
            results = harness.results()
    finally:
        server.stop()

    # Then the order that lost its camera for a moment carries on and is judged from frames
    # taken after the camera came back
    by_order = {oid: [r for r in results if r.order_id == oid]
                for oid in (plan["short"], plan["long"])}
    (short,) = by_order[plan["short"]]
    assert short.status in (OrderStatus.VALIDATED, OrderStatus.MISMATCH), short
    (ask,) = [a for a in harness.of(m.VlmAsk) if a.order_id == plan["short"]]
    assert max(ask.seqs) > plan["drop_seq"], "the verdict saw the bag after the camera's return"
    # And the order whose camera stayed away past the hold fails "camera offline", naming the
    # camera, once: its frames after the camera's return open no second order
    (long,) = by_order[plan["long"]]
    assert long.status is OrderStatus.FAILED, long
    assert (long.reason or "").startswith("camera offline") and server.url in long.reason, long
    assert long.truth_correct is None
    # And the operator was told each time the camera left and came back
    notices = [(n.severity, n.text, n.part) for n in harness.of(m.StationNotice)]
    lost = [n for n in notices if n[1].startswith("camera lost, reconnecting") and
            server.url in n[1]]
    back = [n for n in notices if n[1].startswith("camera back")]
    assert len(lost) >= 2 and len(back) >= 2 and all(n[2] == "s" for n in lost + back), notices
