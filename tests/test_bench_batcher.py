"""``edgeapp bench batcher``: a tiny run reports its figures, and they add up."""

from __future__ import annotations

import json

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest

from edgeapp import cli


def test_tiny_run_reports_batched_and_unbatched_figures(capsys) -> None:
    code = cli.main(["bench", "batcher", "--json", "--stations", "3", "--seconds", "0.5",
                     "--rounds", "1"])
    out, _ = capsys.readouterr()
    assert code == 0
    result = json.loads(out)

    assert {"batched_rps", "unbatched_rps", "speedup", "added_latency_p99_ms",
            "batch_window_ms"} <= set(result)
    assert result["batched_rps"] > 0 and result["unbatched_rps"] > 0
    assert result["speedup"] == pytest.approx(
        result["batched_rps"] / result["unbatched_rps"], rel=0.01)
    assert result["batch_window_ms"] == 50  # the default config's window
    assert result["added_latency_p99_ms"] >= 0
    assert result["failed"] == 0
    assert result["stations"] == 3 and result["frames_per_request"] == 2  # vlm.top_k_frames
    # one-by-one really is one request per batch; batched mode put several in one
    assert result["mean_batch_size"]["unbatched"] == 1
    assert result["mean_batch_size"]["batched"] > 1
    assert len(result["runs_rps"]["batched"]) == len(result["runs_rps"]["unbatched"]) == 1
    # the yardstick: the backend's own gain, the same requests handed to it directly
    direct = result["direct_s"]
    assert len(direct["batch"]) == len(direct["one_by_one"]) == 3  # 3 pairs a round
    ratios = sorted(o / b for b, o in zip(direct["batch"], direct["one_by_one"], strict=True))
    assert result["backend_gain"] == pytest.approx(ratios[1], rel=0.02)  # their median
    assert result["batcher_efficiency"] == pytest.approx(
        result["speedup"] / result["backend_gain"], rel=0.02)
    assert isinstance(result["goal_met"], bool)
