"""``edgeapp config``: print the commented default config, or check a config file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeapp.config import Config

NAME = "config"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``config``."""
    p = subparsers.add_parser(
        NAME, help="print the default config or check a config file",
        description="Print the full default config as commented YAML (a starting point for "
        "your own), or check a config file without starting anything.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--print-default", action="store_true",
                      help="print the default config (the built-in demo) as commented YAML")
    what.add_argument("--check", metavar="FILE", type=Path,
                      help="check FILE, its orders and inventory files and its video-file "
                      "sources: print 'config ok' or the first error (exit code 2)")


def run(args: argparse.Namespace) -> int:
    """Print the default config, or check ``args.check``; a bad file raises ConfigError."""
    from edgeapp.config import default_config_yaml, load_config

    if args.print_default:
        sys.stdout.write(default_config_yaml())
        return 0
    config = load_config(args.check)
    check_config_files(config)
    n = len(config.stations)
    print(f"config ok: {args.check} ({n} station{'s' if n != 1 else ''})")
    return 0


def check_config_files(config: Config) -> None:
    """What the config points at: the orders and inventory files parse (a CatalogError names
    file, line and column), and every video-file source exists and gives a frame. Cameras
    on the network or USB are not tried: they may be down now and up at run time."""
    from edgeapp.engine.orders.catalog import load_catalog
    from edgeapp.engine.sources.factory import file_path
    from edgeapp.engine.sources.file import probe_video
    from edgeapp.errors import ConfigError, SourceError

    load_catalog(config.orders_path, config.inventory_path)
    for i, station in enumerate(config.stations):
        path = file_path(station.source)
        if path is None:
            continue
        try:
            probe_video(path)
        except SourceError as exc:
            raise ConfigError(f"config error: stations[{i}].source = {station.source!r}: "
                              f"{exc}") from None
