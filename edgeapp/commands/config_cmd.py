"""``edgeapp config``: print the commented default config, or check a config file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
                      help="check FILE: print 'config ok' or the first error (exit code 2)")


def run(args: argparse.Namespace) -> int:
    """Print the default config, or check ``args.check``; a bad file raises ConfigError."""
    from edgeapp.config import default_config_yaml, load_config

    if args.print_default:
        sys.stdout.write(default_config_yaml())
        return 0
    n = len(load_config(args.check).stations)
    print(f"config ok: {args.check} ({n} station{'s' if n != 1 else ''})")
    return 0
