"""``edgeapp keys``: CURVE keys for remote inference workers.

``keys init`` makes the server keypair in ``<data_dir>/keys`` (the Producer and Collector use
it); ``keys add-worker NAME`` makes a worker's keypair, authorises it, and prints the folder
to copy to the worker box (start it with ``edgeapp --worker --keys DIR``); ``keys list`` and
``keys revoke NAME`` show and withdraw authorisations. A running engine reads the authorised
keys again when they change: a new worker can join at once, and a revoked one is dropped
within a second (its tasks go back to the queue; it exits with code 11).
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "keys"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``keys`` and its actions."""
    p = subparsers.add_parser(
        NAME, help="make and manage CURVE keys for remote workers",
        description="'keys init' makes the server keypair (used by the Producer and Collector); "
        "'keys add-worker NAME' makes a worker's keypair, authorises it and prints the folder "
        "to copy to the worker (start it with 'edgeapp --worker --keys DIR'); 'keys list' and "
        "'keys revoke NAME' show and withdraw authorisations. Both apply to a running engine "
        "at once: a revoked worker is dropped within a second.")
    p.add_argument("--keys-dir", type=Path, metavar="DIR",
                   help="key folder (default: distributed.keys_dir, i.e. <data_dir>/keys)")
    sub = p.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    init = sub.add_parser("init", help="make the server keypair")
    init.add_argument("--force", action="store_true",
                      help="replace existing server keys (every worker needs new keys)")
    add = sub.add_parser("add-worker", help="make and authorise a worker's keypair")
    add.add_argument("worker_name", metavar="NAME")
    sub.add_parser("list", help="list authorised workers")
    revoke = sub.add_parser("revoke", help="withdraw a worker's authorisation")
    revoke.add_argument("worker_name", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    """Do the chosen action; print one line per result."""
    from edgeapp.engine.distributed import keys
    from edgeapp.errors import SecurityError

    root = args.keys_dir or _configured_keys_dir(args)
    if args.keys_action == "init":
        secret = keys.init_server(root, force=args.force)
        print(f"server keys written: {secret.parent} (keep {secret.name} private)")
    elif args.keys_action == "add-worker":
        folder = keys.add_worker(root, args.worker_name)
        print(f"worker {args.worker_name!r} authorised; copy {folder} to the worker and run: "
              f"edgeapp --worker --connect tcp://HOST:5555 --keys DIR")
    elif args.keys_action == "list":
        for name in keys.list_workers(root):
            print(name)
    elif args.keys_action == "revoke":
        if not keys.revoke_worker(root, args.worker_name):
            raise SecurityError(f"no worker named {args.worker_name!r} in {root}")
        print(f"worker {args.worker_name!r} revoked: a running engine drops it within a second")
    return 0


def _configured_keys_dir(args: argparse.Namespace) -> Path:
    cfg = getattr(args, "cfg", None)
    if cfg is not None:
        return Path(cfg.distributed.keys_dir)
    from edgeapp import paths

    return paths.default_keys_dir(paths.user_data_dir())
