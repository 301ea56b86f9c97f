"""``edgeapp bench autoscale``: the demo with autoscaling from 1 station, in a real Engine.

The built-in demo (its controller, its synthetic cameras) on private sockets, autoscaling on
from 1 station up to ``--max-stations`` with a ``--hysteresis`` window, for ``--duration``
seconds. Figures:

- ``stations_reached``: the most stations the autoscaler ran at once;
- ``seconds_to_steady``: from the start until the station count first reached that number
  (the ramp);
- ``changes_after_steady``: scale-ups and scale-downs after that (0: no flapping);
- ``slo_fulfilment``: share of the seconds (after the controller was ready) with no SLO
  CRITICAL;
- ``verdict_accuracy``: share of orders whose verdict matched the synthetic camera's truth.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeapp.config import Config, config_from_dict
from edgeapp.engine.api import EngineEvent, ScalingAction, ScalingDecision, SloState
from edgeapp.errors import UsageError

DEFAULTS = {"duration_s": 600.0, "max_stations": 8, "hysteresis_s": 30.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--duration", type=float, default=DEFAULTS["duration_s"], metavar="S",
                        help="seconds to run (default 600)")
    parser.add_argument("--max-stations", type=int, default=DEFAULTS["max_stations"],
                        metavar="N", help="the autoscaler's max_stations (default 8)")
    parser.add_argument("--hysteresis", type=float, default=DEFAULTS["hysteresis_s"],
                        metavar="S", help="the autoscaler's hysteresis window (default 30)")


def run_autoscale_bench(args: argparse.Namespace) -> dict[str, Any]:
    """``edgeapp bench autoscale`` with the parsed options."""
    if not args.duration > 0 or not 1 <= args.max_stations <= 256 or args.hysteresis < 0:
        raise UsageError("bench autoscale: --duration must be > 0, --max-stations 1..256, "
                         "--hysteresis >= 0")
    return bench_autoscale(args.duration, args.max_stations, args.hysteresis)


def demo_config(root: Path, max_stations: int, hysteresis_s: float) -> Config:
    """The built-in demo on ipc sockets under ``root``, autoscaling from 1 station."""
    return config_from_dict({
        "data_dir": str(root / "data"),
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock"},
        "scaling": {"enabled": True, "min_stations": 1, "max_stations": max_stations,
                    "hysteresis_window": hysteresis_s},
    })


def bench_autoscale(duration_s: float, max_stations: int, hysteresis_s: float
                    ) -> dict[str, Any]:
    """Run the demo with autoscaling for ``duration_s``; the figures above."""
    from edgeapp.engine.engine import Engine

    root = Path(tempfile.mkdtemp(prefix="ea-scale-", dir="/tmp"))  # ipc paths must be short
    decisions: list[ScalingDecision] = []

    def keep(event: EngineEvent) -> None:
        if isinstance(event, ScalingDecision):
            decisions.append(event)

    try:
        engine = Engine(demo_config(root, max_stations, hysteresis_s))
        engine.subscribe(keep)
        started_wall = time.time()
        engine.start()
        seconds = ok = 0
        try:
            end = time.monotonic() + duration_s
            while (now := time.monotonic()) < end:
                time.sleep(max(0.0, min(1.0, end - now)))
                status = engine.status()
                if status.control.ready:
                    seconds += 1
                    ok += all(s.state is not SloState.CRITICAL for s in status.slos)
        finally:
            engine.stop(timeout=60)
        summary = engine.summary()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures(decisions, started_wall, seconds, ok, summary)


def figures(decisions: list[ScalingDecision], started_wall: float, seconds: int, ok: int,
            summary: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's figures from the decisions and the per-second SLO tally."""
    changes = [d for d in decisions if d.action is not ScalingAction.HOLD]
    reached = max((d.new_count for d in changes), default=1)
    steady = next((d for d in changes if d.new_count == reached), None)
    steady_at = steady.ts if steady is not None else started_wall
    return {
        "stations_reached": reached,
        "seconds_to_steady": round(steady_at - started_wall, 1),
        "changes_after_steady": sum(d.ts > steady_at for d in changes),
        "slo_fulfilment": round(ok / seconds, 4) if seconds else None,
        "verdict_accuracy": summary.get("verdict_accuracy"),
        "orders": summary.get("orders"),
        "decisions": [{"t_s": round(d.ts - started_wall, 1), "action": d.action.value,
                       "stations": d.new_count, "reason": d.reason} for d in decisions],
    }
