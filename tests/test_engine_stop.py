"""Stopping: a graceful stop lets the order on the counter finish and stores its verdict, a
second signal cuts it short (the order is stored ``failed``), SIGTERM to ``--headless`` is
a clean stop, and a headless run with no station left exits 13.

Real station processes, a real worker, the real detector and OCR, real SQLite; the VLM is
the local backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import yaml
from engine_helpers import EventLog, current_order, engine_config, engine_threads, short_dir

from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.orders.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
CHECKED = (OrderStatus.VALIDATED, OrderStatus.MISMATCH)
RESULTS_FILE = "results.sqlite3"  # the name the README gives


def _stored(data_dir: Path, order_id: str) -> list[OrderResult]:
    path = data_dir / RESULTS_FILE
    assert path.is_file(), f"no {RESULTS_FILE} in {data_dir}: {sorted(os.listdir(data_dir))}"
    with ResultsStore(path, create=False) as store:
        return store.by_order(order_id)


def test_a_graceful_stop_lets_the_station_finish_the_order_on_its_counter():
    # Given an engine with one station whose counter has an order being packed
    root = short_dir()
    config = engine_config(root, [{"name": "cam", "seed": 7}], vlm={"grade": "low"})
    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    on_counter: list[str] = []
    try:
        def packing() -> bool:
            order = current_order(engine, "cam")
            if order is not None and order not in {r.order_id for r in log.results()}:
                on_counter.append(order)
            return bool(on_counter)

        log.wait(packing, 150, "an order on the counter")
        assert on_counter[0] not in {r.order_id for r in log.results()}, "already judged"
    finally:
        # When the engine stops gracefully (as a first Ctrl+C or SIGTERM does)
        engine.stop(timeout=60)
    assert not engine_threads(), engine_threads()

    # Then the station finished that order: it was checked by the VLM, not failed, and its
    # verdict is in the results store
    order = on_counter[0]
    (result,) = [r for r in log.results() if r.order_id == order]
    assert result.status in CHECKED and result.reason is None, result
    assert result.truth_verdict is not None, "the camera finished the order: it has a truth"
    assert [r.result_id for r in _stored(root / "data", order)] == [result.result_id]


# ── edgeapp --headless as a process ─────────────────────────────────────────────────────


def _config(root: Path, **extra: Any) -> Path:
    path = root / "edgeapp.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "stations": [{"name": "cam", "seed": 4}],
        "controller": {"kind": "static"},
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock", "local_workers": 1},
        **extra,
    }))
    return path


def _headless(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeapp", "--config", str(config), "--headless", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _order_in_status_line(proc: subprocess.Popen[str]) -> str:
    """Read status lines until one shows an order on the counter (``cam:running#ID``)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        for word in line.split():
            if word.startswith("cam:running#"):
                return word.split("#", 1)[1]
    raise AssertionError(f"the run ended (code {proc.wait()}) before an order was on the "
                         f"counter: {proc.stderr.read() if proc.stderr else ''}")


def test_sigterm_to_headless_finishes_the_order_on_the_counter_and_exits_130():
    # Given `edgeapp --headless` running, with an order on the counter
    root = short_dir()
    proc = _headless(_config(root, vlm={"grade": "low"}))
    try:
        order = _order_in_status_line(proc)

        # When it gets SIGTERM (as from systemd or `kill`)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()

    # Then it stops cleanly with exit code 130 and prints the summary
    assert proc.returncode == 130, err
    assert "orders:" in out and "order latency (order end -> verdict)" in out, out
    # ... and the order on the counter was finished and its verdict stored
    (result,) = _stored(root / "data", order)
    assert result.status in CHECKED and result.reason is None, result


def test_a_second_signal_cuts_the_order_on_the_counter_short_and_stores_it_failed():
    # Given `edgeapp --headless` on a camera at 5 FPS, where packing an order takes 12-18 s,
    # and an order that has just come onto the counter
    root = short_dir()
    proc = _headless(_config(root, stations=[{"name": "cam", "seed": 4, "fps": 5.0}],
                             stream={"start_fps_level": 1.0}, vlm={"grade": "low"}))
    try:
        order = _order_in_status_line(proc)  # at most one status line (5 s) after it came

        # When a first SIGTERM asks it to finish that order, and a second one comes at once
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # two separate deliveries, as from a user pressing Ctrl+C twice
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
        proc.wait()

    # Then it does not wait for the order to be packed and judged: the order is cut short,
    # stored as failed with the reason, and the run exits 130 with its summary
    assert proc.returncode == 130, err
    assert "orders:" in out and "failed 1" in out, out
    (result,) = _stored(root / "data", order)
    assert result.status is OrderStatus.FAILED, result
    assert "station stopped" in (result.reason or ""), result


def test_headless_exits_13_when_no_station_is_left_running():
    # Given a config whose only station watches a video file that is not there
    root = short_dir()
    config = _config(root, stations=[{"name": "cam", "source": str(root / "missing.mp4")}])

    # When `edgeapp --headless` runs it (no --duration: it would run until a signal)
    proc = _headless(config)
    out, err = proc.communicate(timeout=120)

    # Then it says so and exits 13, with its summary
    assert proc.returncode == 13, (out, err)
    assert "orders: 0" in out, out
