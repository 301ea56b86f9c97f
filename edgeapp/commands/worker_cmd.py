"""``edgeapp --worker --connect tcp://HOST:PORT``: a headless inference worker.

Needs only numpy, opencv, openvino, pyzmq and msgpack. Signals: the first SIGTERM (or Ctrl+C)
stops asking for work, finishes what it holds (bounded by ``--drain-timeout``) and leaves;
a second one leaves at once. Started by the engine (``--child``), it ignores SIGINT: the
parent stops it with SIGTERM. While no Producer answers it says so every 10 s; a handshake
that cannot succeed (keys missing, wrong or refused) ends it at once with exit 11 and what to
check. Exit codes: :class:`WorkerExit`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENDPOINT = re.compile(r"^(tcp://[^\s:]+:\d+|ipc://\S+)$")
HELP = "run a headless inference worker that fetches frames from a Producer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options (on the top-level parser for ``edgeapp --worker``)."""
    g = parser.add_argument_group("worker (--worker)")
    g.add_argument("--connect", metavar="ENDPOINT",
                   help="the Producer, e.g. tcp://10.0.0.5:5555 (required with --worker)")
    g.add_argument("--collector", metavar="ENDPOINT",
                   help="the Collector (default: the address the Producer names)")
    g.add_argument("--keys", metavar="DIR", type=Path,
                   help="folder from 'edgeapp keys add-worker NAME' (CURVE keys); exit 2 when "
                        "it or a key file in it is not what that command made")
    g.add_argument("--name", help="worker name shown by the engine (default: host-pid)")
    g.add_argument("--processor", default="auto", metavar="SPEC",
                   help="'auto' (by the Producer's work type), 'noop', or module:callable")
    g.add_argument("--noop-delay-ms", type=float, default=0.0, metavar="MS",
                   help="with --processor noop: sleep this long per batch (tests)")
    g.add_argument("--prefetch", type=int, default=2, metavar="N",
                   help="batches kept waiting while one is processed")
    g.add_argument("--request-timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for a reply before reconnecting")
    g.add_argument("--connect-timeout", type=float, default=None, metavar="S",
                   help="give up (exit 12) when no Producer answers for this long at start")
    g.add_argument("--drain-timeout", type=float, default=10.0, metavar="S",
                   help="after END or SIGTERM, seconds to finish held tasks")
    g.add_argument("--inference-threads", type=int, metavar="N",
                   help="OpenVINO threads for this worker (default: the Producer's or all cores)")
    g.add_argument("--inference-streams", type=int, metavar="N",
                   help="OpenVINO streams for this worker (default: the Producer's or auto)")
    g.add_argument("--cpu-pinning", choices=("on", "off"),
                   help="pin OpenVINO threads to cores (off when several workers share a box)")
    g.add_argument("--nice", type=int, default=0, metavar="N",
                   help="lower this worker's CPU priority by N (0-19): the engine's local "
                        "workers run at 5, so a verdict waits less for frame detection")
    g.add_argument("--child", action="store_true",
                   help="started by the engine: ignore SIGINT; leave when the engine is gone")


def run(args: argparse.Namespace) -> int:
    """Run a worker until END, a signal or a fatal error; return its exit code."""
    from edgeapp.engine.distributed.local_workers import ENGINE_PID_ENV
    from edgeapp.engine.distributed.processor import noop_factory
    from edgeapp.engine.distributed.worker import Worker, WorkerExit
    from edgeapp.errors import ConfigError

    for option, value in (("--connect", args.connect), ("--collector", args.collector)):
        if (value or option == "--connect") and not ENDPOINT.match(value or ""):
            raise ConfigError(f"{option}: expected an endpoint like tcp://HOST:5555, "
                              f"got {value!r}")
    if not 0 <= args.nice <= 19:
        raise ConfigError(f"--nice: expected 0 to 19, got {args.nice}")
    if args.nice:
        os.nice(args.nice)
    factory: Any = args.processor
    if args.processor == "noop":
        factory = noop_factory(args.noop_delay_ms / 1000.0)
    factory = _with_local_sizing(factory, args)
    worker = Worker(args.connect, processor_factory=factory, collector=args.collector,
                    keys_dir=args.keys, name=args.name, prefetch=args.prefetch,
                    request_timeout_s=args.request_timeout,
                    connect_timeout_s=args.connect_timeout, notice=_notice)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            os._exit(int(WorkerExit.TERMINATED))  # second signal: leave now
        stopping.set()
        worker.stop(drain=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN if args.child else on_signal)
    # The engine names itself: it may have died before this interpreter got here.
    parent = int(os.environ.get(ENGINE_PID_ENV) or os.getppid())
    worker.start()
    while not worker.join(timeout=0.2):
        if stopping.is_set() or worker.exit_code is not None:
            break
        if args.child and os.getppid() != parent:  # the engine died (kill -9): leave too
            print("edgeapp worker: the engine that started this worker is gone; leaving",
                  file=sys.stderr)
            stopping.set()
            worker.stop(drain=False)
    if not worker.join(timeout=args.drain_timeout):
        worker.stop(drain=False)
        worker.join(timeout=2.0)
    code = worker.exit_code if worker.exit_code is not None else WorkerExit.OK
    if code != WorkerExit.OK and worker.error:
        print(f"edgeapp worker: {worker.error}", file=sys.stderr)
    return int(code)


def _notice(text: str) -> None:
    """A line for the operator on stderr (waiting for the Producer, reconnecting)."""
    print(f"edgeapp worker: {text}", file=sys.stderr, flush=True)


def _with_local_sizing(factory: Any, args: argparse.Namespace) -> Any:
    """Let this box's own sizing flags win over what the Producer tells every worker: the
    Producer cannot know how many cores a remote box has or how many workers share it."""
    from edgeapp.engine.distributed.processor import load_factory

    local = {key: value for key, value in (
        ("inference_threads", args.inference_threads),
        ("inference_streams", args.inference_streams),
        ("cpu_pinning", None if args.cpu_pinning is None else args.cpu_pinning == "on"),
    ) if value is not None}
    if not local:
        return factory
    base = load_factory(factory) if isinstance(factory, str) else factory
    return lambda confirmation: base({**confirmation, **local})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgeapp.commands.worker_cmd``: the worker without the full CLI."""
    parser = argparse.ArgumentParser(prog="edgeapp-worker", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from edgeapp.errors import EdgeAppError

    try:
        return run(args)
    except EdgeAppError as exc:
        print(f"edgeapp worker: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
