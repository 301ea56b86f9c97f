"""``edgeapp --headless``: run the engine without a window, show a live status line, and end
with a summary (orders, verdicts, accuracy against the synthetic truth, latency, frames/s).

Signals: the first Ctrl+C or SIGTERM stops the engine cleanly (stations finish the order on
their counter first); a second one stops them at once (those orders end ``failed``). The
summary is printed either way.
"""

from __future__ import annotations

import argparse
import enum
import json
import signal
import sys
import threading
import time
from typing import Any, TextIO

from edgeapp.commands import metrics_opts

HELP = "run the engine without a window; print a live status line and a summary at the end"

_PLAIN_STATUS_S = 5.0  # a status line this often when the output is not a terminal


class HeadlessExit(enum.IntEnum):
    """Exit codes of ``edgeapp --headless``."""

    OK = 0  # ran for --duration (or until every camera ended) and stopped cleanly
    NO_STATION_LEFT = 13  # every station crashed or went offline before the end
    INTERRUPTED = 130  # stopped by Ctrl+C or SIGTERM (the summary is still printed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The headless options (on the top-level parser for ``edgeapp --headless``)."""
    g = parser.add_argument_group("headless (--headless)")
    g.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: run until Ctrl+C or SIGTERM)")
    g.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (the live status goes to stderr)")
    metrics_opts.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the engine until the duration, a signal, or no station left; print the summary."""
    from edgeapp.engine.engine import Engine

    if args.duration is not None and not args.duration > 0:
        from edgeapp.errors import UsageError

        raise UsageError(f"--duration must be > 0 seconds, got {args.duration}")
    out: TextIO = sys.stderr if args.json else sys.stdout
    stop = threading.Event()
    signals: list[int] = []
    engine = Engine(args.cfg)

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        if len(signals) > 1:
            engine.hurry()  # second signal: do not wait for orders to finish
        stop.set()

    # Bound before the engine starts: a port in use fails at once, not after the start-up.
    metrics = metrics_opts.start(engine, args)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        engine.start()
        code = _watch(engine, stop, args.duration, out)
        if signals:
            code = HeadlessExit.INTERRUPTED
        _status_line(engine, out, final=True)
        engine.stop()
    finally:
        engine.stop(timeout=10.0, finish_orders=False)  # after a failure: returns at once
        if metrics is not None:
            metrics.stop()
            metrics.join(2.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = engine.summary()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(format_summary(summary))
    return int(code)


def _watch(engine: Any, stop: threading.Event, duration: float | None, out: TextIO) -> int:
    """Refresh the status line until the end; the exit code says why it ended."""
    tty = out.isatty()
    started = time.monotonic()
    next_plain = started + _PLAIN_STATUS_S
    while not stop.wait(0.5 if tty else 0.25):
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            return HeadlessExit.OK
        states = [s["state"] for s in engine.status()["stations"]]
        if states and all(s in ("crashed", "offline", "ended", "stopped") for s in states):
            left_down = [s for s in states if s in ("crashed", "offline")]
            return HeadlessExit.NO_STATION_LEFT if left_down else HeadlessExit.OK
        if tty or now >= next_plain:
            _status_line(engine, out, final=False)
            next_plain = now + _PLAIN_STATUS_S
    return HeadlessExit.OK


def _status_line(engine: Any, out: TextIO, final: bool) -> None:
    s = engine.status()
    orders = s["orders"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(orders.items())) or "none yet"
    p95 = s["order_latency_p95_s"]
    cpu = s["system"]["cpu_percent"]
    stations = " ".join(f"{st['name']}:{st['state']}" + (f"#{st['current_order']}"
                                                          if st["current_order"] else "")
                        for st in s["stations"])
    params = s["parameters"]
    slo = ",".join(f"{x['name']} {x['state']}" for x in s["slo"] if x["state"] != "OK") or "ok"
    line = (f"{s['uptime_s'] or 0:6.1f}s  {s['fps']:5.1f} fps  queue {s['queues']['tasks']:3d}  "
            f"orders {sum(orders.values())} ({counts})  p95 "
            f"{'n/a' if p95 is None else f'{p95:.2f}s'}  cpu "
            f"{'n/a' if cpu is None else f'{cpu:.0f}%'}  "
            f"at {params['fps']:.2f}x fps {params['resolution']:.2f}x size {params['grade']} "
            f"({params['set_by']})  slo {slo}  {stations}")
    if out.isatty():
        out.write("\r" + line + "\033[K" + ("\n" if final else ""))
    elif not final:
        out.write(line + "\n")
    out.flush()


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines of text."""
    def sec(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    by_status = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
    acc = summary["verdict_accuracy"]
    fps = summary["frames_per_s"]
    lines = [
        f"edgeapp headless: {sec(summary['duration_s'])}, {summary['stations']} stations, "
        f"{'n/a' if fps is None else f'{fps:.1f}'} frames/s",
        f"orders: {summary['orders']}" + (f" ({by_status})" if by_status else ""),
        "verdict accuracy: " + ("n/a (no order with camera truth)" if acc is None else
                                f"{acc * 100:.1f} % ({summary['correct']} of "
                                f"{summary['judged']} orders with camera truth)"),
        f"order latency (order end -> verdict): p50 {sec(summary['latency_p50_s'])}, "
        f"p95 {sec(summary['latency_p95_s'])}, p99 {sec(summary['latency_p99_s'])}",
    ]
    if summary.get("camera_orders") is not None:
        lines.append(f"orders the synthetic cameras finished: {summary['camera_orders']}")
    return "\n".join(lines)
