"""``edgeapp bench soak``: per-process growth from the baseline sample, and a short real run."""

from __future__ import annotations

import os

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest

from edgeapp.engine.bench.soak import bench_soak, soak_figures


def _proc(pid: int, rss: float, fds: int = 10, threads: int = 5) -> dict:
    return {"pid": pid, "rss_mb": rss, "fds": fds, "threads": threads}


def test_growth_is_measured_from_minute_10_per_process_and_role() -> None:
    samples = []
    for minute in range(0, 61):
        procs = {"engine": _proc(1, 100.0 + (50 if minute < 10 else minute * 0.05)),
                 "worker local-0": _proc(2 if minute < 30 else 3, 80.0 + minute,
                                         fds=12 if minute < 45 else 13)}
        if minute < 20:
            procs["station cam-1"] = _proc(4, 60.0)
        samples.append({"t_s": minute * 60.0, "processes": procs})
    out = soak_figures(samples, 60.0)
    assert out["baseline_s"] == 600.0
    engine = out["processes"]["engine"]
    assert engine["rss_mb_baseline"] == pytest.approx(100.5), "start-up growth is not counted"
    assert out["rss_growth_pct"]["engine"] == pytest.approx((103.0 / 100.5 - 1) * 100, abs=0.01)
    worker = out["processes"]["worker local-0"]
    assert worker["restarted"] and worker["pid"] == 3 and worker["baseline_t_s"] == 1800.0
    assert out["fd_growth"]["worker local-0"] == 1
    assert out["processes"]["station cam-1"]["ended"]
    assert not out["goal_met"], "the restarted worker grew 28 % and gained a descriptor"


def test_a_short_run_measures_over_what_exists() -> None:
    samples = [{"t_s": t, "processes": {"engine": _proc(1, 100.0 + t / 60)}} for t in
               (0.0, 60.0, 120.0)]
    out = soak_figures(samples, 60.0)
    assert out["baseline_s"] == 60.0 and out["goal_met"]
    assert out["rss_growth_pct"] == {"engine": pytest.approx(0.99, abs=0.01)}


def test_a_real_soak_samples_every_process_of_the_demo() -> None:
    out = bench_soak(0.15, sample_s=3.0, stations=1)
    labels = set(out["processes"])
    assert "engine" in labels and "station station-1" in labels, labels
    workers = [k for k in labels if k.startswith("worker ")]
    assert len(workers) == 2, labels
    assert out["processes"]["engine"]["pid"] == os.getpid()
    assert len(out["samples"]) >= 3
    for label, proc in out["processes"].items():
        assert proc["rss_mb_end"] > 10 and proc["rss_growth_pct"] is not None, label
        assert isinstance(out["fd_growth"][label], int)
    assert out["orders"] >= 0 and out["stations"] == 1
