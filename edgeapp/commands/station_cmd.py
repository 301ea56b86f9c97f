"""``edgeapp --station NAME --redis redis://HOST:6379/0``: one station on this machine.

The station (its camera, pacer, order tracker, OCR, frame selector and validator) runs here
and talks to an engine elsewhere through Redis (``queue_backend: redis``): its frames go to
the engine's frame address over ZeroMQ, everything else through Redis Streams. The station
is ``NAME`` in the config (``--config FILE``; the built-in demo's stations without one). The
engine lists it as remote and tells it the stream parameters; Ctrl+C or SIGTERM stops it (the
order on its counter ends ``failed: station stopped``), a second one at once.

Exit codes: 0 stopped as asked; 2 a config problem (no such station, Redis refused the
login); 12 Redis cannot be reached at start; 1 the station crashed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

HELP = "run one station here for an engine on another machine (queue_backend: redis)"
METAVAR = "NAME"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The station's options (on the top-level parser for ``edgeapp --station NAME``)."""
    g = parser.add_argument_group("station (--station NAME)")
    g.add_argument("--redis", metavar="URL",
                   help="the Redis server, redis://HOST:6379/0 or rediss://… (TLS) (default: "
                        "the config's redis section); give the password in the environment "
                        "variable named by redis.password_env, not in the URL")
    g.add_argument("--engine-frames", metavar="ENDPOINT",
                   help="where the engine takes frames, e.g. tcp://10.0.0.5:5557 (default: "
                        "the address the engine publishes in Redis)")
    g.add_argument("--station-keys", metavar="DIR", type=Path,
                   help="folder from 'edgeapp keys add-worker NAME' (CURVE keys), when the "
                        "engine's frame address needs them")


def run(args: argparse.Namespace) -> int:
    """Run the station until stopped; its exit code."""
    from edgeapp.config import StationConfig
    from edgeapp.config.rules import valid_kind
    from edgeapp.engine.engine_setup import ticket_class_of
    from edgeapp.engine.orders.catalog import load_catalog
    from edgeapp.engine.stations.redis_queue.runner import run_station
    from edgeapp.engine.stations.redis_queue.station_link import LinkOptions
    from edgeapp.engine.stations.redis_queue.target import RedisTarget
    from edgeapp.engine.stations.settings import StationSettings
    from edgeapp.errors import ConfigError

    cfg = args.cfg
    if args.engine_frames is not None and not valid_kind("endpoint", args.engine_frames):
        raise ConfigError(f"--engine-frames: expected an endpoint like tcp://10.0.0.5:5557, "
                          f"got {args.engine_frames!r}")
    stations: dict[str, StationConfig] = {s.name: s for s in cfg.stations}
    station = stations.get(args.station)
    if station is None:
        raise ConfigError(f"--station {args.station}: no station of that name in the config "
                          f"(its stations: {', '.join(stations)}); add it with remote: true")
    target = RedisTarget.from_config(cfg.redis)
    if args.redis:
        target = target.with_url(args.redis)
    client = target.connect()
    try:
        target.check(client)  # a wrong address or password: one clear line, now
    finally:
        client.close()
    keys = None
    if args.station_keys is not None:
        from edgeapp.engine.distributed.keys import load_client_keys

        keys = load_client_keys(args.station_keys)
    settings = StationSettings.from_config(
        cfg, station, ticket_class=ticket_class_of(cfg, load_catalog(cfg.orders_path,
                                                                     cfg.inventory_path)),
        fps_level=cfg.stream.start_fps_level, scale=1.0)
    print(f"edgeapp station {station.name}: {station.source} through Redis at "
          f"{target.describe()}; Ctrl+C stops it", file=sys.stderr, flush=True)
    stop = threading.Event()
    interrupts: list[int] = []

    def on_int(_signum: int, _frame: Any) -> None:
        interrupts.append(1)
        if len(interrupts) > 1:
            raise KeyboardInterrupt  # second Ctrl+C: leave now
        stop.set()

    signal.signal(signal.SIGINT, on_int)
    code = run_station(settings, target, LinkOptions.from_config(cfg.redis), keys=keys,
                       stop=stop, frames_address=args.engine_frames)
    print(f"edgeapp station {station.name}: stopped", file=sys.stderr, flush=True)
    return code
