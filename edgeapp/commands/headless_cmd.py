"""``edgeapp --headless``: run the engine without a window, show a live status line, and end
with a summary (orders, verdicts, accuracy against the synthetic truth, latency, frames/s).

Signals: the first Ctrl+C or SIGTERM stops the engine cleanly (stations finish the order on
their counter first); a second one stops them at once (those orders end ``failed``). The
summary is printed either way.

Every ``Notification`` (a station that crashed, a camera gone, the VLM down and back, a worker
lost) is printed as its own line above the status line, and a worker that leaves abnormally
too; the summary lists the stations that crashed or lost their camera.
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
from edgeapp.engine.api import (
    CameraState,
    EngineEvent,
    Notification,
    SloState,
    StationState,
    StationStateChanged,
    StationStatus,
    WorkerLeft,
)

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
    console = Console(out)
    engine.subscribe(console.event)

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
        code = _watch(engine, stop, args.duration, console)
        if signals:
            code = HeadlessExit.INTERRUPTED
        _status_line(engine, console, final=True)
        engine.stop()
    finally:
        engine.stop(timeout=10.0, finish_orders=False)  # after a failure: returns at once
        if metrics is not None:
            metrics.stop()
            metrics.join(2.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = engine.summary() | {"station_problems": console.problems()}
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(format_summary(summary))
    return int(code)


class Console:
    """The live status line and the event lines printed above it (from the event thread)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._lock = threading.Lock()
        self._problems: dict[str, dict[str, str]] = {}  # station -> what went wrong -> why

    def event(self, event: EngineEvent) -> None:
        """An engine event: print what the operator must know; note what went wrong."""
        if isinstance(event, Notification):
            self.line(event.ts, event.severity.name, event.part, event.text)
        elif isinstance(event, WorkerLeft) and event.reason != "end":
            self.line(time.time(), "WARNING", f"worker {event.name}",
                      f"left ({event.reason}); {event.requeued} of its frames went back to "
                      "the queue")
        elif isinstance(event, StationStateChanged):
            if event.new in (StationState.CRASHED, StationState.RESTARTING):
                self._problem(event.station, "crashed", event.reason)
            elif event.new is StationState.OFFLINE:
                self._problem(event.station, "offline", event.reason)
            elif event.camera in (CameraState.OFFLINE, CameraState.RECONNECTING):
                self._problem(event.station, f"camera {event.camera.value}", event.reason)

    def line(self, ts: float, severity: str, part: str, text: str) -> None:
        """One event line, above the status line."""
        stamp = time.strftime("%H:%M:%S", time.localtime(ts))
        with self._lock:
            # On a terminal the status line is redrawn on the next tick, below this one.
            self.out.write(("\r\033[K" if self.tty else "")
                           + f"{stamp} {severity:<7} {part}: {text}\n")
            self.out.flush()

    def status(self, line: str, final: bool) -> None:
        """The live status line: rewritten in place on a terminal, else one line each."""
        with self._lock:
            if self.tty:
                self.out.write("\r" + line + "\033[K" + ("\n" if final else ""))
            elif not final:
                self.out.write(line + "\n")
            self.out.flush()

    def problems(self) -> dict[str, list[str]]:
        """Per station, what went wrong during the run (the last reason of each kind)."""
        with self._lock:
            return {name: [f"{what}: {why}" for what, why in kinds.items()]
                    for name, kinds in sorted(self._problems.items())}

    def _problem(self, station: str, what: str, why: str) -> None:
        with self._lock:
            self._problems.setdefault(station, {})[what] = why


def _watch(engine: Any, stop: threading.Event, duration: float | None, console: Console) -> int:
    """Refresh the status line until the end; the exit code says why it ended."""
    tty = console.tty
    started = time.monotonic()
    next_plain = started + _PLAIN_STATUS_S
    while not stop.wait(0.5 if tty else 0.25):
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            return HeadlessExit.OK
        stations = engine.status().stations
        if stations and all(_ended(s) for s in stations):
            down = [s for s in stations if s.state is StationState.CRASHED
                    or s.camera is CameraState.OFFLINE]
            return HeadlessExit.NO_STATION_LEFT if down else HeadlessExit.OK
        if tty or now >= next_plain:
            _status_line(engine, console, final=False)
            next_plain = now + _PLAIN_STATUS_S
    return HeadlessExit.OK


def _ended(station: StationStatus) -> bool:
    """A station that will serve no more frames (crashed, stopped, camera gone)."""
    return (station.state in (StationState.CRASHED, StationState.STOPPED)
            or station.camera in (CameraState.OFFLINE, CameraState.ENDED))


def _status_line(engine: Any, console: Console, final: bool) -> None:
    s = engine.status()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s.orders.items())) or "none yet"
    p95, cpu = s.order_latency_p95_s, s.system.cpu_percent
    stations = " ".join(f"{st.name}:{_station_word(st)}"
                        + (f"#{st.current_order}" if st.current_order else "")
                        for st in s.stations)
    params = s.parameters
    slo = ",".join(f"{x.name.value} {x.state.name}" for x in s.slos
                   if x.state is not SloState.OK) or "ok"
    line = (f"{s.uptime_s or 0:6.1f}s  {s.fps or 0.0:5.1f} fps  queue {s.queues.tasks:3d}  "
            f"orders {sum(s.orders.values())} ({counts})  p95 "
            f"{'n/a' if p95 is None else f'{p95:.2f}s'}  cpu "
            f"{'n/a' if cpu is None else f'{cpu:.0f}%'}  "
            f"at {params.fps:.2f}x fps {params.resolution:.2f}x size "
            f"{params.grade.name.lower()} ({params.set_by.value})  slo {slo}  {stations}")
    console.status(line, final)


def _station_word(station: StationStatus) -> str:
    """``running`` or the camera's state while it runs; else the station's own state."""
    if station.state is StationState.RUNNING and station.camera is not None:
        return station.camera.value
    return station.state.value


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
        "verdict accuracy: " + ("n/a (no verdict with camera truth)" if acc is None else
                                f"{acc * 100:.1f} % ({summary['correct']} of "
                                f"{summary['judged']} verdicts with camera truth)"),
        f"order latency (order end -> verdict): p50 {sec(summary['latency_p50_s'])}, "
        f"p95 {sec(summary['latency_p95_s'])}, p99 {sec(summary['latency_p99_s'])}",
    ]
    failed = summary.get("failed_by_reason") or {}
    if failed:
        lines.insert(2, "failed: " + ", ".join(
            f"{kind} {n}" for kind, n in sorted(failed.items(), key=lambda kv: -kv[1])))
    problems = summary.get("station_problems") or {}
    if problems:
        lines.insert(3 if failed else 2, "stations: " + "; ".join(
            f"{name} {', '.join(what)}" for name, what in problems.items()))
    if summary.get("camera_orders") is not None:
        lines.append(f"orders the synthetic cameras finished: {summary['camera_orders']}")
    return "\n".join(lines)
