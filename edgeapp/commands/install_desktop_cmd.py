"""``edgeapp --install-desktop``: the desktop launcher (entry, icon, metainfo) for this user."""

from __future__ import annotations

import argparse

HELP = ("install the desktop launcher (menu entry and icon) for this user under "
        "$XDG_DATA_HOME (~/.local/share)")


def run(args: argparse.Namespace) -> int:
    """Install the launcher and say where it went and what it starts."""
    from edgeapp.desktop import APP_ID, install

    done = install()
    icons = sum(1 for f in done.files if "hicolor" in f.parts)
    print(f"desktop launcher installed under {done.data_home}:\n"
          f"  applications/{APP_ID}.desktop, starting {done.launcher}\n"
          f"  {icons} icons in icons/hicolor/\n"
          f"  metainfo/{APP_ID}.metainfo.xml\n"
          "It shows in the desktop's application menu as 'edgeapp' "
          "(remove it with 'edgeapp --uninstall-desktop').")
    return 0
