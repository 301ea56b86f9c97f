"""Metrics of a real Engine (1 synthetic station, 1 local worker): the sampler's process table,
the history, and the Prometheus endpoint read over real HTTP and parsed."""

from __future__ import annotations

import os
import urllib.request

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import psutil
import pytest
from engine_helpers import EventLog, engine_config, short_dir
from prometheus_client.parser import text_string_to_metric_families

from edgeapp.cli import main
from edgeapp.engine.api import SloState, StationState
from edgeapp.engine.engine import Engine
from edgeapp.engine.metrics.prometheus import start_metrics_server
from edgeapp.errors import TransportError, UsageError


def _scrape(url: str) -> dict[str, list]:
    """name -> samples of one GET of ``url``, parsed with prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        body = reply.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(body)}


def _value(samples: list, **labels: str) -> float:
    (match,) = [s.value for s in samples
                if all(s.labels.get(k) == v for k, v in labels.items())]
    return match


def test_a_running_engine_samples_its_processes_keeps_a_history_and_serves_prometheus():
    # Given an engine with one synthetic station and one local worker, and its endpoint on a
    # free loopback port
    engine = Engine(engine_config(short_dir(), [{"name": "s1", "seed": 5}]))
    log = EventLog()
    engine.subscribe(log)
    engine.start()
    server = start_metrics_server(engine, 0)
    try:
        # When the first verdict is in and the sampler has seen every process
        log.wait(lambda: len(log.results()) >= 1, 150, "a verdict")
        log.wait(lambda: {"engine", "s1", "local-0"} <= set(engine.metrics.processes()),
                 30, "the station and the worker in the process table")

        # Then the process table holds the engine's, the station's and the worker's pids
        table = engine.metrics.processes()
        status = engine.status()
        assert table["engine"].pid == os.getpid()
        assert table["s1"].pid == status.station("s1").pid
        (worker,) = [c for c in psutil.Process().children(recursive=True)
                     if "local-0" in c.cmdline() and "edgeapp.commands.worker_cmd" in c.cmdline()]
        assert table["local-0"].pid == worker.pid
        assert all(u.rss_mb > 0 for u in table.values())

        # ... the history has about a point a second, filtered by time
        log.wait(lambda: len(engine.metrics_history()) >= 3, 30, "three history points")
        points = engine.metrics_history()
        assert [p.ts for p in points] == sorted(p.ts for p in points)
        assert engine.metrics_history(points[-2].ts) == points[-1:]
        last = points[-1]
        assert last.cpu_percent is not None and last.gpu_percent is None
        assert {"engine", "s1", "local-0"} <= set(last.process_rss_mb)
        assert set(last.fps_in) == {"s1"} and last.stations_running == 1

        # ... and a real HTTP GET agrees with status() taken around it
        before = engine.status()
        scraped = _scrape(server.url)
        after = engine.status()
    finally:
        server.stop()
        server.join(5.0)
        engine.stop()

    s1b, s1a = before.station("s1"), after.station("s1")
    frames = scraped["edgeapp_frames"]
    for kind, b, a in (("in", s1b.frames_in, s1a.frames_in),
                       ("processed", s1b.frames_processed, s1a.frames_processed),
                       ("dropped", s1b.frames_dropped, s1a.frames_dropped)):
        assert b <= _value(frames, station="s1", kind=kind) <= a, kind
    assert _value(frames, station="s1", kind="processed") > 0

    orders = scraped["edgeapp_orders"]
    scraped_orders = {s.labels["status"]: s.value for s in orders
                      if s.name == "edgeapp_orders_total"}
    assert {s.labels["station"] for s in orders} == {"s1"}
    assert sum(before.orders.values()) <= sum(scraped_orders.values()) \
        <= sum(after.orders.values())
    latency = scraped["edgeapp_order_latency_seconds"]
    count = _value([s for s in latency if s.name.endswith("_count")])
    inf = _value([s for s in latency if s.name.endswith("_bucket")], le="+Inf")
    assert count == inf == sum(scraped_orders.values()) >= 1

    assert _value(scraped["edgeapp_stations"], state="running") == 1
    assert _value(scraped["edgeapp_stations"], state="crashed") == 0
    p = after.parameters  # the static controller holds them
    params = scraped["edgeapp_stream_parameter"]
    assert _value(params, name="fps") == pytest.approx(p.fps)
    assert _value(params, name="resolution") == pytest.approx(p.resolution)
    assert _value(params, name="grade") == int(p.grade)
    assert {s.labels["slo"] for s in scraped["edgeapp_slo_state"]} == \
        {slo.name.value for slo in after.slos}
    assert all(s.value in {int(v) for v in SloState} for s in scraped["edgeapp_slo_state"])
    assert 0 <= _value(scraped["edgeapp_cpu_percent"]) <= 100
    assert "edgeapp_gpu_percent" not in scraped, "no GPU here: left out, never 0"
    process_pids = {s.labels["process"]: int(s.labels["pid"])
                    for s in scraped["edgeapp_process_resident_memory_bytes"]}
    assert process_pids["s1"] == before.station("s1").pid
    assert StationState.RUNNING is before.station("s1").state


def test_a_metrics_port_in_use_is_one_clear_error():
    engine = Engine(engine_config(short_dir(), [{"name": "s1"}]))
    first = start_metrics_server(engine, 0)
    try:
        with pytest.raises(TransportError, match="choose another --metrics-port"):
            start_metrics_server(engine, first.port)
    finally:
        first.stop()
        first.join(5.0)


def test_metrics_options_that_cannot_work_are_usage_errors(capsys):
    assert main(["--headless", "--metrics-bind", "0.0.0.0"]) == UsageError.exit_code
    assert "--metrics-bind needs --metrics-port" in capsys.readouterr().err
    assert main(["--headless", "--metrics-port", "70000"]) == UsageError.exit_code
    assert "--metrics-port must be 0-65535" in capsys.readouterr().err
    assert main(["--worker", "--metrics-port", "9464"]) == UsageError.exit_code
    assert "work with --headless and the window only" in capsys.readouterr().err
