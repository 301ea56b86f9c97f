"""``edgeapp --headless``: a live status, a summary (text or one JSON object), clean signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from engine_helpers import short_dir

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"orders", "verdict_accuracy", "latency_p50_s", "latency_p95_s", "latency_p99_s",
        "frames_per_s"}


def _config(root: Path) -> Path:
    path = root / "edgeapp.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "stations": [{"name": "cam", "seed": 4}],
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock", "local_workers": 1},
    }))
    return path


def _headless(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeapp", "--config", str(config), "--headless", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_duration_run_prints_one_json_summary_and_exits_0():
    proc = _headless(_config(short_dir()), "--duration", "6", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)  # stdout is the JSON object alone; the status went to stderr
    assert KEYS <= set(summary), summary
    assert summary["stations"] == 1


def test_ctrl_c_stops_cleanly_with_the_summary_and_exit_130():
    proc = _headless(_config(short_dir()))
    assert proc.stdout is not None
    first = proc.stdout.readline()  # a status line every few seconds when not a terminal
    assert " fps " in first and "cam:" in first, first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "orders:" in out and "order latency (order end -> verdict)" in out, out
