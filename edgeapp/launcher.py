"""``edgeapp-gui``: the ``edgeapp`` command for launchers that give the program no console.

On Windows, pip makes ``edgeapp-gui.exe`` a GUI-subsystem launcher (run by ``pythonw``), and
the one-folder app's ``edgeapp-gui.exe`` is built without a console: no console window opens,
and the program has no stdout or stderr (``sys.stderr is None``), so an error printed there
would be lost — or raise. Here they go to ``<data_dir>/logs/edgeapp-gui.log`` instead.
Everywhere else ``edgeapp-gui`` is ``edgeapp``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from edgeapp.cli import main

GUI_LOG_NAME = "edgeapp-gui.log"


def gui_main() -> int:
    """Run ``edgeapp`` with its output in the log file when there is no console to show it."""
    if sys.stdout is None or sys.stderr is None:
        log = _open_log()
        sys.stdout = sys.stdout or log
        sys.stderr = sys.stderr or log
    return main()


def _open_log() -> TextIO:
    from edgeapp.paths import logs_dir, user_data_dir

    folder = logs_dir(user_data_dir())
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / GUI_LOG_NAME, "a", encoding="utf-8", buffering=1)
