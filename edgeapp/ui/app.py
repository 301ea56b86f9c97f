"""``edgeapp`` with no mode: the operator window on the config (the built-in demo by default).

The window comes first and the engine starts behind it (``EngineHost``), so the operator sees
the tiles at once. Ctrl+C or SIGTERM in the terminal close the window as its close button
does: the first stops the engine cleanly, the second at once.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from edgeapp.config import Config
from edgeapp.errors import EdgeAppError, NoDisplayError
from edgeapp.extras import require

APP_NAME = "edgeapp"
DESKTOP_FILE = "org.edgeapp.EdgeApp"
# Qt platforms that need no display server.
_NO_DISPLAY_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


def check_display(env: dict[str, str] | None = None, platform: str = sys.platform) -> None:
    """Raise NoDisplayError when Qt would find no display (instead of aborting the process)."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith("linux"):
        return  # Windows and macOS always have their own window system
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if qpa in _NO_DISPLAY_PLATFORMS:
        return
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return
    raise NoDisplayError("no display to open the window on (neither DISPLAY nor "
                         "WAYLAND_DISPLAY is set); run 'edgeapp --headless' to run without "
                         "a window")


def run(config: Config, config_path: Path | None,
        metrics: tuple[int, str] | None = None) -> int:
    """Open the window on ``config``; returns when it is closed and the engine has stopped.
    ``metrics`` (port, bind) serves Prometheus metrics while an engine runs."""
    check_display()
    require("PySide6", "app")
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from edgeapp import paths
    from edgeapp.ui.engine_host import EngineHost
    from edgeapp.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(DESKTOP_FILE)
    icon = paths.app_icon_path()
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    host = EngineHost(config, metrics=metrics)
    window = MainWindow(config, host, title=config_path.name if config_path else "demo")
    window.show()
    host.begin()
    previous = _close_on_signals(window)
    # Python runs signal handlers only between bytecodes: a slow timer lets it get a turn.
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        app.exec()
    finally:
        wake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        host = window.host  # the engine's last one (Settings' Apply restarts it)
        host.request_stop()  # the loop may also end without the window's close
        host.join()
    error = host.error
    return error.exit_code if isinstance(error, EdgeAppError) else (1 if error else 0)


def _close_on_signals(window: Any) -> dict[int, Any]:
    from PySide6.QtCore import QTimer

    def on_signal(_signum: int, _frame: Any) -> None:
        QTimer.singleShot(0, window.close)

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
