"""The Engine end to end on the synthetic camera: real station processes, real workers with the
real detector, real OCR, the local VLM backend, real SQLite."""

from __future__ import annotations

import os
import signal
from collections import Counter

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import (
    EventLog,
    engine_config,
    engine_threads,
    short_dir,
    truth_orders,
)

from edgeapp.engine.api import (
    CameraState,
    ParametersChanged,
    SetBy,
    StationState,
    StationStateChanged,
    StationStatus,
    WorkerJoined,
)
from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.engine.vision.grades import Grade

SEED, WRONG = 3, 0.5


def test_orders_are_checked_end_to_end_and_a_crashed_station_fails_only_its_order():
    # Given two cameras that show the same orders at the same time (same seed), half of
    # them packed wrong, and an engine with one local worker
    root = short_dir()
    cams = [{"name": name, "seed": SEED, "wrong_order_rate": WRONG} for name in ("a", "b")]
    config = engine_config(root, cams)
    truth = truth_orders(SEED, WRONG)
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    try:
        # When the engine has judged a few orders per station
        log.wait(lambda: len(log.results("a")) >= 3, 150, "three verdicts at station a")
        results = log.results()

        # Then every verdict is right wherever the VLM saw exactly what was packed, with the
        # right missing / extra / quantity differences
        exact = [r for r in results if r.detected_items == truth[r.order_id].packed]
        # (a loose share: on a machine other programs overload, frames come seconds late and
        # the counter's clear moment between two orders can be missed. The exact verdicts of
        # a fixed scenario are asserted on the judge itself: test_vlm_local.py)
        assert len(exact) >= len(results) / 2, f"the pipeline saw too little right: {results}"
        for r in exact:
            t = truth[r.order_id]
            assert r.status.value == t.verdict and r.truth_correct, r
            assert set(r.missing) == set(t.expected) - set(t.packed), r
            assert set(r.extra) == set(t.packed) - set(t.expected), r
            assert {(q.name, q.expected, q.detected) for q in r.quantity_mismatch} == {
                (n, t.expected[n], t.packed[n]) for n in t.expected
                if n in t.packed and t.packed[n] != t.expected[n]}, r
        assert all(r.truth_verdict == truth[r.order_id].verdict for r in results)
        assert all(r.latency_s is not None and r.latency_s >= 0 for r in results)
        assert all(os.path.exists(p) for r in results for p in r.evidence)
        assert all(len(r.evidence) == r.num_frames > 0 for r in results)

        # ... every verdict is in the store, and the same order at both counters is reported
        with ResultsStore(default_results_path(config.data_dir), create=False) as store:
            stored = {r.result_id for r in store.recent(100)}
        assert {r.result_id for r in results} <= stored
        assert any("is on the counter at" in text for text in log.notes()), log.notes()

        # ... and the status and the tiles show the live pipeline
        status = engine.status()
        assert [s.state for s in status.stations] == [StationState.RUNNING] * 2
        assert [s.camera for s in status.stations] == [CameraState.RUNNING] * 2
        assert status.system.gpu_percent is None, "no GPU here: never invented"
        assert status.to_dict()["stations"][0]["state"] == "running"
        assert len(log.of(WorkerJoined)) == 1
        tile = engine.latest_frame("a")
        assert tile is not None and tile.image.shape == (720, 1280, 3)
        assert tile.detections is not None and tile.detections.shape[1] == 6

        # When the operator lowers resolution (level 2 = half size) and grade
        engine.set_override(resolution=2, grade="low")
        log.wait(lambda: engine.latest_frame("a").image.shape == (360, 640, 3), 30,
                 "half-size frames")
        # Then the pacers and the workers follow, and the change is an event
        (change,) = log.of(ParametersChanged)
        assert (change.new.resolution_level, change.new.grade, change.source) == (
            2, Grade.LOW, "operator")
        log.wait(lambda: [w.grade for w in engine.status().workers] == [Grade.LOW], 30,
                 "the worker at grade LOW")
        params = engine.status().parameters
        assert (params.resolution, params.set_by, params.override) == (
            0.5, SetBy.OPERATOR, {"resolution_level": 2, "grade": 0})
        engine.clear_override()
        log.wait(lambda: any("released" in t for t in log.notes()), 30, "the release")
        assert engine.status().parameters.override == {}
        assert engine.parameters.resolution_level == 2, "released: carries on from there"

        # When station b dies with an order on its counter
        victim: list[StationStatus] = []

        def order_at_b() -> bool:  # one snapshot: the order may end between two calls
            victim[:] = [engine.status().stations[1]]
            return victim[0].current_order is not None

        log.wait(order_at_b, 60, "an order at station b")
        assert victim[0].pid is not None
        os.kill(victim[0].pid, signal.SIGKILL)

        # Then that order ends failed with the reason, the crash is reported, the station is
        # restarted after its backoff, and station a keeps checking orders
        log.wait(lambda: any(r.status is OrderStatus.FAILED for r in log.results("b")), 30,
                 "the crashed station's order failed")
        failed = [r for r in log.results("b") if r.status is OrderStatus.FAILED]
        assert failed[-1].order_id == victim[0].current_order
        assert "crashed (killed by SIGKILL)" in failed[-1].reason
        def lifecycle(station: str) -> list[StationState]:
            return [e.new for e in log.of(StationStateChanged)
                    if e.station == station and e.old is not e.new]

        log.wait(lambda: lifecycle("b")[-3:] == [StationState.RESTARTING, StationState.STARTING,
                                                 StationState.RUNNING], 90, "b restarted")
        restarted = engine.status().station("b")
        assert restarted is not None and restarted.restarts == 1
        assert restarted.pid is not None and restarted.pid != victim[0].pid
        (crash,) = [e for e in log.of(StationStateChanged)
                    if e.station == "b" and e.new is StationState.RESTARTING]
        assert "killed by SIGKILL" in crash.reason and "restart in 1 s" in crash.reason
        before = len(log.results("a"))
        log.wait(lambda: len(log.results("a")) > before, 60, "station a goes on")
        assert engine.running
    finally:
        engine.stop(timeout=20)

    # And the stop leaves no thread behind (processes: conftest checks)
    assert not engine_threads(), engine_threads()
    summary = engine.summary()
    assert summary["orders"] == len(log.results())
    assert summary["latency_p95_s"] is not None and summary["frames_per_s"] > 0
    assert Counter(r.status.value for r in log.results()) == Counter(summary["by_status"])
    assert np.isclose(summary["verdict_accuracy"],
                      np.mean([bool(r.truth_correct) for r in log.results()
                               if r.truth_correct is not None]))
