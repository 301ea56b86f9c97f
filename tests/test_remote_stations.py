"""Stations on other machines (``edgeapp --station NAME --redis URL``), on a real
redis-server: a remote station joins, is supervised, and a kill -9 makes it OFFLINE with its
order failed while the engine carries on; an engine killed with VLM requests pending is
started again and every order ends exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import yaml
from engine_helpers import EventLog, short_dir
from ovms_server import OvmsServer
from redis_helpers import RedisServer, redis_module_server, redis_server

from edgeapp.config import load_config
from edgeapp.engine.api import StationState, StationStateChanged
from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.engine.stations.redis_queue import codec

__all__ = ["redis_module_server", "redis_server"]  # fixtures used by name

ROOT = Path(__file__).resolve().parents[1]


def write_config(root: Path, server: RedisServer, stations: list[dict[str, Any]],
                 **sections: Any) -> Path:
    """A YAML config for both sides: the Redis backend, private sockets, one local worker."""
    data: dict[str, Any] = {
        "data_dir": str(root / "data"), "queue_backend": "redis", "stations": stations,
        "stream": {"start_fps_level": 0.33}, "controller": {"kind": "static"},
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock",
                        "stations_bind": f"ipc://{root}/s.sock", "local_workers": 1},
        "redis": {"host": "127.0.0.1", "port": server.port, "namespace": "t",
                  "heartbeat_s": 0.5, "silent_after_s": 3.0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = root / "edgeapp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def edgeapp(root: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``edgeapp ARGS`` as a process of its own (output in ``root``); ended at the end."""
    log = open(root / f"{'-'.join(a.strip('-') for a in args[2:4])}.log", "ab")  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edgeapp", *args], stdout=log, stderr=log,
                            env=env, cwd=root)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    """Poll ``condition`` until truthy; fail after ``timeout`` s saying ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return value


def test_a_remote_station_joins_and_a_kill_9_makes_it_offline_with_its_order_failed(
        redis_server: RedisServer):
    # Given an engine on Redis with a local station, and a remote one it waits for
    root = short_dir()
    path = write_config(root, redis_server, [
        {"name": "local", "seed": 3, "wrong_order_rate": 0.5},
        {"name": "far", "seed": 4, "wrong_order_rate": 0.5, "remote": True}])
    log = EventLog()
    engine = Engine(load_config(path))
    engine.subscribe(log)
    engine.start()
    try:
        far = wait_for(lambda: engine.status().station("far"), 10, "far in the status")
        assert far.remote and far.state is StationState.STARTING
        assert "edgeapp --station far" in far.reason
        # When the remote station starts on its machine, given only where Redis is
        with edgeapp(root, "--config", str(path), "--station", "far", "--redis",
                     redis_server.url()) as proc:
            # Then it is listed as remote and running, its frames are detected, its tile
            # shows, and it checks orders
            log.wait(lambda: any(r.status is not OrderStatus.FAILED
                                 for r in log.results("far")), 150, "a verdict from far")
            station = engine.status().station("far")
            assert station is not None and station.remote
            assert station.state is StationState.RUNNING and station.pid is None
            assert station.frames_processed > 0
            tile = engine.latest_frame("far")
            assert tile is not None and tile.image.shape == (720, 1280, 3)

            # When it is killed -9 with an order on its counter
            order = wait_for(lambda: engine.status().station("far").current_order, 90,
                             "an order on far's counter")
            proc.kill()
            proc.wait(10)

            # Then it goes OFFLINE for its silence, that order fails once, and the engine
            # carries on with the local station
            log.wait(lambda: engine.status().station("far").state is StationState.OFFLINE,
                     30, "far OFFLINE")
            (offline,) = [e for e in log.of(StationStateChanged)
                          if e.station == "far" and e.new is StationState.OFFLINE]
            assert "silent for" in offline.reason
            failed = [r for r in log.results("far") if r.status is OrderStatus.FAILED]
            assert [r.order_id for r in failed] == [order], "its order failed, once"
            assert "silent for" in failed[0].reason
            before = len(log.results("local"))
            log.wait(lambda: len(log.results("local")) > before, 90, "local goes on")
            assert engine.running
    finally:
        engine.stop(timeout=20.0)


def _pending_requests(server: RedisServer) -> list[str]:
    """The request ids the engine took and has not answered (its consumer group's PEL)."""
    client = server.target().connect()
    try:
        keys = server.target().keys()
        pending = client.xpending_range(keys.requests, "engine", "-", "+", 100)
        ids = []
        for entry in pending:
            (_, fields), = client.xrange(keys.requests, entry["message_id"],
                                         entry["message_id"])
            _, ask = codec.decode(fields)
            ids.append(ask.ask.request_id)  # type: ignore[attr-defined]
        return ids
    finally:
        client.close()


def test_an_engine_killed_with_requests_pending_is_started_again_and_every_order_ends_once(
        redis_server: RedisServer):
    # Given a slow VLM server, an engine on Redis, and a remote station checking orders
    root = short_dir()
    vlm = OvmsServer().start()
    vlm.delay_s = 4.0
    path = write_config(root, redis_server, [
        {"name": "far", "seed": 3, "wrong_order_rate": 0.5, "remote": True}],
        vlm={"backend": "openai", "url": vlm.url, "timeout_s": 30.0})
    try:
        with edgeapp(root, "--config", str(path), "--headless") as first, \
                edgeapp(root, "--config", str(path), "--station", "far"):
            # When the engine is killed -9 while the VLM works on a request
            wait_for(lambda: vlm.active > 0, 180, "a request at the VLM")
            first.kill()
            first.wait(10)
            pending = _pending_requests(redis_server)
            assert pending, "a request is left pending in Redis"
            # Then the engine started again answers it, and the station's verdict is stored
            with edgeapp(root, "--config", str(path), "--headless") as second:
                store_path = default_results_path(root / "data")

                def verdicts() -> dict[str, Any]:
                    if not store_path.exists():
                        return {}
                    with ResultsStore(store_path, create=False) as store:
                        return {r.result_id: r for r in store.recent(1000)}

                wait_for(lambda: set(pending) <= set(verdicts()), 120,
                         f"the verdicts of {pending}")
                for rid in pending:
                    assert verdicts()[rid].status is not OrderStatus.FAILED, verdicts()[rid]
                second.send_signal(signal.SIGTERM)  # (the station is stopped by it too)
                second.wait(60)
        # And every order the station ended is stored once, every request answered once
        client = redis_server.target().connect()
        keys = redis_server.target().keys()
        sent = client.xinfo_stream(keys.results)["entries-added"]
        asked = client.xinfo_stream(keys.requests)["entries-added"]
        replies = Counter(codec.decode(f)[1].request_id  # type: ignore[attr-defined]
                          for _, f in client.xrange(keys.down("far"))
                          if f[b"t"] == b"reply")
        client.close()
        assert len(verdicts()) == sent, "every verdict the station sent is stored, once"
        assert set(replies.values()) == {1} and len(replies) == asked, replies
    finally:
        vlm.stop()
