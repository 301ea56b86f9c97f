"""``edgeapp bench soak --minutes N --json``: the demo for N minutes, every process watched.

The built-in demo (4 synthetic stations, its local workers, the local VLM judge, the default
controller) runs in an :class:`~edgeapp.engine.engine.Engine` in this process, on private ipc
sockets and a scratch data folder. Once the first frames are through, every ``sample_s``
(60 s) the bench reads each process of the run with psutil — this one (the engine), every
station process, every local worker, and any other child — its RSS, open file descriptors
and threads. At the end, per process, from the baseline sample (minute 10, or the sample
before the last on a run too short for that: growth over what exists) to the last:

- ``rss_growth_pct``: RSS growth in percent; ``fd_growth``, ``thread_growth``: counts gained.

Goal (issue 20): RSS growth < 5 % for every process, no fd or thread growth. A process that
was restarted (a new pid for the same role) is measured from its new pid's first sample and
marked ``restarted``; one that ended before the run did is marked ``ended`` and left out of
the goal. ``orders`` and ``verdict_accuracy`` come from the engine's own summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from edgeapp.errors import EdgeAppError, UsageError

BASELINE_S = 600.0  # growth is measured from minute 10: start-up allocations are not leaks
RSS_GOAL_PCT = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The soak's options."""
    parser.add_argument("--minutes", type=float, default=60.0, metavar="N",
                        help="how long the demo runs once frames flow (default 60)")
    parser.add_argument("--sample-s", type=float, default=60.0, metavar="S",
                        help="seconds between samples of every process (default 60)")
    parser.add_argument("--stations", type=int, default=None, metavar="K",
                        help="run only the first K of the demo's stations (default: all 4)")


def run_soak_bench(args: argparse.Namespace) -> dict[str, Any]:
    """``edgeapp bench soak``: see the module docstring."""
    if not args.minutes > 0 or not args.sample_s > 0:
        raise UsageError("bench soak: --minutes and --sample-s must be > 0")
    return bench_soak(args.minutes, sample_s=args.sample_s, stations=args.stations)


def bench_soak(minutes: float, *, sample_s: float = 60.0, stations: int | None = None,
               start_timeout_s: float = 180.0) -> dict[str, Any]:
    """Run the demo ``minutes`` long, sampling every process every ``sample_s``."""
    from edgeapp.config import config_from_dict
    from edgeapp.engine.engine import Engine

    root = Path(tempfile.mkdtemp(prefix="ea-soak-", dir="/tmp"))  # ipc paths must be short
    try:
        config = config_from_dict({
            "data_dir": str(root / "data"),
            "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                            "collector_bind": f"ipc://{root}/c.sock"},
        })
        if stations is not None:
            config = dataclasses.replace(config, stations=config.stations[:max(1, stations)])
        engine = Engine(config)
        samples: list[dict[str, Any]] = []
        engine.start()
        try:
            _wait_for_frames(engine, start_timeout_s)
            start = time.monotonic()
            end = start + minutes * 60.0
            while True:
                now = time.monotonic()
                samples.append({"t_s": round(now - start, 1), "processes": _sample(engine)})
                _progress(samples[-1], engine)
                if now >= end:
                    break
                time.sleep(max(0.0, min(end, now + sample_s) - time.monotonic()))
        finally:
            engine.stop(timeout=30.0, finish_orders=False)
        summary = engine.summary()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {**soak_figures(samples, sample_s), "minutes": minutes,
            "orders": summary["orders"], "by_status": summary["by_status"],
            "verdict_accuracy": summary["verdict_accuracy"],
            "stations": summary["stations"], "samples": samples}


def soak_figures(samples: list[dict[str, Any]], sample_s: float) -> dict[str, Any]:
    """Per-process growth from the baseline sample to the last (see the module docstring)."""
    if not samples:
        raise ValueError("no samples")
    last_t = samples[-1]["t_s"]
    baseline_s = min(BASELINE_S, max(0.0, last_t - sample_s))
    processes: dict[str, dict[str, Any]] = {}
    labels = {label for s in samples for label in s["processes"]}
    for label in sorted(labels):
        seen = [(s["t_s"], s["processes"][label]) for s in samples if label in s["processes"]]
        pid = seen[-1][1]["pid"]
        mine = [(t, x) for t, x in seen if x["pid"] == pid]
        base_t, base = next(((t, x) for t, x in mine if t >= baseline_s), mine[0])
        end_t, final = mine[-1]
        processes[label] = {
            "pid": pid, "baseline_t_s": base_t, "end_t_s": end_t,
            "rss_mb_baseline": base["rss_mb"], "rss_mb_end": final["rss_mb"],
            "rss_growth_pct": round((final["rss_mb"] / base["rss_mb"] - 1.0) * 100.0, 2)
            if base["rss_mb"] else None,
            "fd_growth": final["fds"] - base["fds"],
            "thread_growth": final["threads"] - base["threads"],
            "restarted": len(mine) < len(seen),
            "ended": end_t < last_t,
        }
    judged = {k: v for k, v in processes.items() if not v["ended"]}
    return {
        "sample_s": sample_s, "baseline_s": baseline_s, "end_s": last_t,
        "rss_growth_pct": {k: v["rss_growth_pct"] for k, v in processes.items()},
        "fd_growth": {k: v["fd_growth"] for k, v in processes.items()},
        "thread_growth": {k: v["thread_growth"] for k, v in processes.items()},
        "goal_met": bool(judged) and all(
            (v["rss_growth_pct"] or 0.0) < RSS_GOAL_PCT and v["fd_growth"] <= 0
            and v["thread_growth"] <= 0 for v in judged.values()),
        "processes": processes,
    }


def _sample(engine: Any) -> dict[str, dict[str, Any]]:
    """RSS (MB), open fds and threads of the engine and every child, by role."""
    status = engine.status()
    roles = {os.getpid(): "engine"}
    roles.update({s.pid: f"station {s.name}" for s in status.stations if s.pid})
    roles.update({w.pid: f"worker {w.name}" for w in status.workers if w.pid and w.local})
    me = psutil.Process()
    out: dict[str, dict[str, Any]] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            with proc.oneshot():
                label = roles.get(proc.pid) or _other_label(proc)
                out[label] = {"pid": proc.pid, "rss_mb": round(proc.memory_info().rss / 2**20, 2),
                              "fds": proc.num_fds(), "threads": proc.num_threads()}
        except psutil.NoSuchProcess:  # ended between the listing and the reading
            continue
    return out


def _other_label(proc: psutil.Process) -> str:
    """A child that is neither a station nor a worker, e.g. multiprocessing's tracker."""
    tracker = any("resource_tracker" in arg for arg in proc.cmdline())
    return f"{'resource_tracker' if tracker else 'other ' + proc.name()} {proc.pid}"


def _wait_for_frames(engine: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (engine.status().fps or 0.0) > 0:
            return
        time.sleep(0.5)
    raise EdgeAppError(f"bench soak: no frames came through within {timeout_s:.0f} s")


def _progress(sample: dict[str, Any], engine: Any) -> None:
    """One line per sample on stderr: a soak runs for an hour."""
    procs = sample["processes"]
    rss = sum(p["rss_mb"] for p in procs.values())
    orders = sum(engine.status().orders.values())
    print(json.dumps({"t_s": sample["t_s"], "processes": len(procs),
                      "rss_mb_total": round(rss, 1), "orders": orders}),
          file=sys.stderr, flush=True)
