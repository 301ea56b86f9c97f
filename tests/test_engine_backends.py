"""The same Engine test on both queue backends: pipes and shared memory, and Redis (a real
redis-server): a local station checks an order, shows its tile, and a kill -9 of its process
fails only the order on its counter; it is restarted and checks orders again."""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import Any

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import EventLog, engine_config, short_dir
from redis_helpers import RedisServer, redis_module_server, redis_server

from edgeapp.engine.api import StationState, StationStateChanged, StationStatus
from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderStatus

__all__ = ["redis_module_server", "redis_server"]  # fixtures used by name

SEED, WRONG = 3, 0.5


@pytest.fixture(params=["multiprocessing", "redis"])
def backend(request: pytest.FixtureRequest, redis_module_server: RedisServer
            ) -> tuple[str, dict[str, Any]]:
    """A queue backend and its config sections (Redis: the module's redis-server, started
    before the test so that the leak check does not count it)."""
    if request.param == "multiprocessing":
        return "multiprocessing", {}
    server: RedisServer = request.getfixturevalue("redis_server")
    return "redis", {"redis": {"host": "127.0.0.1", "port": server.port, "namespace": "t"}}


def test_a_station_checks_orders_and_a_kill_fails_only_its_order(
        backend: tuple[str, dict[str, Any]]):
    # Given an engine with one station on the backend under test
    root = short_dir()
    kind, sections = backend
    config = dataclasses.replace(engine_config(
        root, [{"name": "a", "seed": SEED, "wrong_order_rate": WRONG}],
        distributed={"stations_bind": f"ipc://{root}/s.sock"}, **sections), queue_backend=kind)
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    try:
        # When it has checked an order
        log.wait(lambda: len(log.results("a")) >= 1, 150, "a verdict at station a")
        # Then the verdict is judged against the camera's truth, and status and tile show
        # the live station
        (first,) = log.results("a")[:1]
        assert first.truth_verdict is not None and first.status is not OrderStatus.FAILED
        station = engine.status().station("a")
        assert station is not None and station.state is StationState.RUNNING
        assert not station.remote and station.pid is not None
        log.wait(lambda: engine.latest_frame("a") is not None, 10, "a tile")
        tile = engine.latest_frame("a")
        assert tile is not None and tile.image.shape == (720, 1280, 3)

        # When its process is killed with an order on its counter
        victim: list[StationStatus] = []

        def order_on_counter() -> bool:
            victim[:] = [engine.status().station("a")]
            return victim[0].current_order is not None and victim[0].pid is not None

        log.wait(order_on_counter, 90, "an order on the counter")
        os.kill(victim[0].pid, signal.SIGKILL)

        # Then that order ends failed with the reason, once, and the station comes back
        def failed() -> list[Any]:
            return [r for r in log.results("a") if r.status is OrderStatus.FAILED]

        log.wait(lambda: failed(), 30, "the killed station's order failed")
        assert [r.order_id for r in failed()] == [victim[0].current_order]
        assert "killed by SIGKILL" in failed()[0].reason
        log.wait(lambda: [e.new for e in log.of(StationStateChanged) if e.station == "a"
                          and e.old is not e.new][-2:] == [StationState.STARTING,
                                                           StationState.RUNNING], 60,
                 "station a restarted")
        assert engine.running
    finally:
        engine.stop(timeout=20.0)
    ids = [r.result_id for r in log.results()]
    assert len(ids) == len(set(ids)), "every order ended once"
