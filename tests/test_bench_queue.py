"""``edgeapp bench queue``: round trips through both backends in one run, on a real
redis-server, and its bad options."""

from __future__ import annotations

from redis_helpers import need_redis

from edgeapp.cli import main
from edgeapp.engine.bench.queue import bench_queue


def test_a_short_run_measures_both_backends_and_redis_throughput():
    need_redis()
    result = bench_queue(requests=10, frames=1, width=320, height=180, messages=200, rounds=1)
    for key in ("mp_p50_ms", "mp_p99_ms", "redis_p50_ms", "redis_p99_ms", "mp_bare_p50_ms",
                "redis_bare_p99_ms"):
        assert result[key] > 0, (key, result)
    assert result["mp_p50_ms"] <= result["mp_p99_ms"]
    assert result["redis_p50_ms"] <= result["redis_p99_ms"]
    assert result["redis_msgs_per_s"] > 0 and result["requests"] == 10
    assert result["redis"] == "private loopback"


def test_bad_options_are_one_line_and_exit_64(capsys):
    assert main(["bench", "queue", "--size", "big"]) == 64
    assert "--size: expected WxH" in capsys.readouterr().err
