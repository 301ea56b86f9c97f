"""``edgeapp --uninstall-desktop``: remove what ``--install-desktop`` installed for this user."""

from __future__ import annotations

import argparse

HELP = "remove the desktop launcher that --install-desktop installed for this user"


def run(args: argparse.Namespace) -> int:
    """Remove the launcher's files; say how many (none is not an error)."""
    from edgeapp.desktop import data_home, uninstall

    removed = uninstall()
    if removed:
        print(f"desktop launcher removed from {data_home()}: {len(removed)} files")
    else:
        print(f"no desktop launcher installed under {data_home()}: nothing to remove")
    return 0
