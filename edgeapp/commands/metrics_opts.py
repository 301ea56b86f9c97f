"""``--metrics-port`` / ``--metrics-bind``: the Prometheus endpoint of a running engine.

The options go on the top-level parser (``add_arguments``); a mode that runs an engine calls
``start(engine, args)`` after it built the engine and stops what it returns at the end. Every
other mode refuses them (``refuse``): ``--headless`` and the window serve the endpoint.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from edgeapp.engine.metrics.prometheus import DEFAULT_BIND

if TYPE_CHECKING:
    from edgeapp.engine.metrics.prometheus import MetricsServer, MetricsSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The metrics options."""
    g = parser.add_argument_group("metrics (--headless and the window)")
    g.add_argument("--metrics-port", type=int, metavar="N",
                   help="serve Prometheus metrics on http://ADDR:N/metrics (0: any free port, "
                        "printed at start)")
    g.add_argument("--metrics-bind", metavar="ADDR", default=DEFAULT_BIND,
                   help=f"address the metrics endpoint listens on (default {DEFAULT_BIND}; "
                        "0.0.0.0 exposes it to the network, without authentication)")


def start(engine: MetricsSource, args: argparse.Namespace) -> MetricsServer | None:
    """Serve ``engine``'s metrics when ``--metrics-port`` was given (says where on stderr)."""
    if args.metrics_port is None:
        if args.metrics_bind != DEFAULT_BIND:
            from edgeapp.errors import UsageError

            raise UsageError("--metrics-bind needs --metrics-port")
        return None
    from edgeapp.engine.metrics.prometheus import start_metrics_server

    server = start_metrics_server(engine, args.metrics_port, args.metrics_bind)
    print(f"edgeapp: Prometheus metrics on {server.url}", file=sys.stderr)
    return server


def window_option(args: argparse.Namespace) -> tuple[int, str] | None:
    """``(port, bind)`` for the window's engine host, or None without ``--metrics-port``."""
    if args.metrics_port is None:
        if args.metrics_bind != DEFAULT_BIND:
            from edgeapp.errors import UsageError

            raise UsageError("--metrics-bind needs --metrics-port")
        return None
    return args.metrics_port, args.metrics_bind


def refuse(args: argparse.Namespace) -> None:
    """``UsageError`` when the metrics options were given to a mode that does not serve them."""
    if getattr(args, "metrics_port", None) is not None or \
            getattr(args, "metrics_bind", DEFAULT_BIND) != DEFAULT_BIND:
        from edgeapp.errors import UsageError

        raise UsageError("--metrics-port and --metrics-bind work with --headless and the "
                         "window only")
