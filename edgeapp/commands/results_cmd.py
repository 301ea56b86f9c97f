"""``edgeapp results list|export|summary``: read the order results the engine stored."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.errors import InputError

NAME = "results"
FORMATS = ("csv", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``results`` with its ``list``, ``export`` and ``summary`` sub-commands."""
    p = subparsers.add_parser(
        NAME, help="list or export stored order results",
        description="Read the order results database (default: results.sqlite3 in the data "
        "folder of the config).")
    sub = p.add_subparsers(dest="results_action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="print the newest results, newest first")
    ls.add_argument("--limit", type=_positive_int, default=50, help="at most N results")
    ls.add_argument("--station", help="only this station id")
    ls.add_argument("--order", help="only this order id")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_db(ls)

    ex = sub.add_parser("export", help="write every result to a CSV or JSON file")
    ex.add_argument("out", type=Path, help="output file, e.g. results.csv")
    ex.add_argument("--format", choices=FORMATS,
                    help="file format (default: from the file name's suffix)")
    _add_db(ex)

    sm = sub.add_parser("summary", help="counts by status and verdict accuracy, as JSON")
    _add_db(sm)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; errors are ``EdgeAppError`` for the CLI to report."""
    with ResultsStore(_db_path(args), create=False) as store:
        if args.results_action == "list":
            _list(store, args)
        elif args.results_action == "export":
            fmt = _export_format(args.out, args.format)
            n = store.export_csv(args.out) if fmt == "csv" else store.export_json(args.out)
            print(f"exported {n} results to {args.out}")
        else:
            print(json.dumps(store.summary(), indent=2))
    return 0


HEADER = f"{'TIME':<19}  {'ORDER':<8} {'STATION':<10} {'STATUS':<10} {'ACC':>5}  " \
         f"{'LATENCY':>8}  DETAIL"


def format_row(result: OrderResult) -> str:
    """One aligned line of ``results list``."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.created_at))
    latency = "n/a" if result.latency_s is None else f"{result.latency_s:.2f}s"
    return (f"{when}  {result.order_id:<8} {result.station_id:<10} {result.status.value:<10} "
            f"{result.accuracy:>5.2f}  {latency:>8}  {_detail(result)}").rstrip()


def _list(store: ResultsStore, args: argparse.Namespace) -> None:
    results = store.query(order_id=args.order, station_id=args.station, limit=args.limit)
    if args.json:
        for result in results:
            print(json.dumps(result.to_dict()))
        return
    if not results:
        print(f"no results in {store.path}")
        return
    print(HEADER)
    for result in results:
        print(format_row(result))


def _detail(result: OrderResult) -> str:
    parts = []
    if result.missing:
        parts.append("missing " + ", ".join(result.missing))
    if result.extra:
        parts.append("extra " + ", ".join(result.extra))
    for m in result.quantity_mismatch:
        parts.append(f"{m.name} {m.detected} of {m.expected}")
    if result.reason:
        parts.append(result.reason)
    return "; ".join(parts)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path,
                   help="results database (default: <data_dir>/results.sqlite3)")


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    return default_results_path(_data_dir(getattr(args, "config", None)))


def _data_dir(config_path: str | None) -> Path:
    try:
        from edgeapp.config import load_config
    except ModuleNotFoundError as exc:
        if exc.name != "edgeapp.config":
            raise
        # Until the config module lands: the platform's user data folder, as it will default.
        from platformdirs import user_data_dir

        return Path(user_data_dir("edgeapp", appauthor=False))
    return Path(load_config(config_path).data_dir)


def _export_format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise InputError(f"results export: cannot tell the format of {out}; pass --format csv|json")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
