"""The benchmark runner on the real pipeline: its report agrees with the results store, a
cancelled run keeps what it measured, bad options get one clear line."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import engine_threads

from edgeapp import cli
from edgeapp.config import config_from_dict
from edgeapp.engine.bench.runner import BenchmarkRunner, Progress
from edgeapp.engine.bench.scenarios import Scenario

# One station, one local worker, the static controller (no agent to compile): lean.
SMALL = {"controller": "static", "local_workers": 1}


def _config():
    return config_from_dict({"stream": {"start_fps_level": 0.5}})


def _store_orders(path: Path, start: float, end: float) -> list[tuple[float, str, int | None]]:
    """(latency, status, truth_correct) of every verdict stored inside the window."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT latency_s, status, truth_correct FROM results "
                          "WHERE created_at > ? AND created_at <= ?", (start, end)).fetchall()


def test_short_run_writes_json_and_csv_that_agree_with_the_results_store(tmp_path) -> None:
    # Given two 10-second scenarios of one station each
    scenarios = [Scenario("first", 1, 10.0, **SMALL), Scenario("second", 1, 10.0, **SMALL)]
    stages: list[Progress] = []

    # When the runner runs them into a results folder
    report = BenchmarkRunner(_config(), scenarios, out_dir=tmp_path, progress=stages.append,
                             warmup_s=1.0, cooldown_s=0.0).run()

    # Then the JSON and the CSV are there and parse, one entry per scenario
    data = json.loads(Path(report.files["json"]).read_text())
    with open(report.files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [s["scenario"]["name"] for s in data["scenarios"]] == ["first", "second"]
    assert [r["scenario"] for r in rows] == ["first", "second"]
    assert Path(report.files["latency_png"]).read_bytes()[:4] == b"\x89PNG"
    assert Path(report.files["throughput_png"]).read_bytes()[:4] == b"\x89PNG"
    total = 0
    for entry, row in zip(data["scenarios"], rows, strict=True):
        assert entry["error"] is None and not entry["cancelled"]
        # ... every figure comes from the scenario's own results store, kept beside them
        stored = _store_orders(tmp_path / entry["results_db"], entry["started_at"],
                               entry["ended_at"])
        assert int(row["orders"]) == entry["orders"] == len(stored)
        latencies = [lat for lat, _, _ in stored if lat is not None]
        if latencies:
            for q in (50, 95, 99):
                expected = float(np.percentile(latencies, q))
                assert float(row[f"latency_p{q}_s"]) == pytest.approx(expected, abs=1e-3)
                assert entry[f"latency_p{q}_s"] == pytest.approx(expected, abs=1e-3)
            assert float(row["latency_avg_s"]) == pytest.approx(np.mean(latencies), abs=1e-3)
        judged = [right for _, _, right in stored if right is not None]
        assert entry["judged"] == len(judged) and entry["correct"] == sum(judged)
        # ... the window is the asked-for 10 s, a sample per second, frames came through
        assert 10.0 <= entry["duration_s"] < 12.0
        assert len(entry["samples"]) == 10
        assert entry["frames"] > 0 and float(row["frames_per_s"]) > 0
        assert 0.0 <= entry["slo_fulfilment"] <= 1.0
        # ... machine figures from the engine's metrics history (GPU: n/a here, not 0)
        assert entry["cpu_avg"] is not None and entry["cpu_max"] >= entry["cpu_avg"]
        assert entry["rss_max_mb"] > 0
        assert entry["gpu_avg"] is None or entry["gpu_max"] >= entry["gpu_avg"]
        assert entry["parameters_end"]["set_by"] == "config"
        total += entry["orders"]
    assert total >= 1, "20 measured seconds of a synthetic station ended no order"
    assert stages[-1].stage == "done" and stages[-1].fraction == 1.0
    assert not engine_threads(), engine_threads()


def test_cancel_mid_run_keeps_what_was_measured(tmp_path) -> None:
    # Given a run of two 60-second scenarios, cancelled 3 s into the first one's measuring
    runner: BenchmarkRunner

    def progress(p: Progress) -> None:
        if p.stage == "measuring" and p.elapsed_s >= 3.0:
            runner.cancel()

    runner = BenchmarkRunner(_config(), [Scenario("long", 1, 60.0, **SMALL),
                                         Scenario("never", 1, 60.0, **SMALL)],
                             out_dir=tmp_path, progress=progress, warmup_s=1.0, cooldown_s=0.0)

    # When it runs
    report = runner.run()

    # Then the report is written, the first scenario cut short with its seconds, the second
    # never started
    data = json.loads(Path(report.files["json"]).read_text())
    assert data["cancelled"] is True
    (entry,) = data["scenarios"]
    assert entry["scenario"]["name"] == "long" and entry["cancelled"] is True
    assert 3.0 <= entry["duration_s"] < 10.0
    assert len(entry["samples"]) >= 3 and entry["frames"] > 0
    with open(report.files["csv"], newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["cancelled"] == "True" and int(row["frames"]) == entry["frames"]
    assert not engine_threads(), engine_threads()


@pytest.mark.parametrize(("argv", "says"), [
    (["bench", "stations"], "--stations 1,2,4 or --standard"),
    (["bench", "stations", "--stations", "0,2"], "station counts >= 1"),
    (["bench", "stations", "--stations", "1", "--fps-level", "9"], "--fps-level 9"),
])
def test_bad_options_get_one_line_and_the_usage_exit_code(argv, says, capsys) -> None:
    assert cli.main(argv) == 64
    _, err = capsys.readouterr()
    assert says in err and len(err.strip().splitlines()) == 1, err
