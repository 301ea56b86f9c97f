"""Helpers for the window tests: a window on a real engine, and a check that nothing of Qt's
is left running after a test (napari's ``dangling_qthreads``, for timers too)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytestqt.exceptions
from PySide6.QtCore import QSettings, QThread, QTimer
from PySide6.QtWidgets import QApplication

from edgeapp.config import Config
from edgeapp.ui.engine_host import EngineHost
from edgeapp.ui.main_window import MainWindow

_started: dict[int, tuple[QThread, str]] = {}
_original_start = QThread.start


def record_qthread_start(thread: QThread, *args: Any) -> None:
    """``QThread.start`` that remembers the thread and where it was started."""
    _started[id(thread)] = (thread, "".join(traceback.format_stack(limit=8)[:-1]))
    _original_start(thread, *args)


def qt_leftovers() -> list[str]:
    """QThreads still running (with where they were started) and QTimers still active."""
    left = []
    for thread, where in list(_started.values()):
        try:
            if thread.isRunning():
                left.append(f"QThread {thread.objectName() or thread!r} started at\n{where}")
        except RuntimeError:  # its C++ object is gone: it cannot run
            pass
    app = QApplication.instance()
    if app is not None:
        for widget in app.topLevelWidgets():
            for timer in widget.findChildren(QTimer):
                if timer.isActive():
                    left.append(f"an active QTimer ({timer.interval()} ms) in "
                                f"{type(widget).__name__}")
    return left


@pytest.fixture
def no_qt_leftovers(qtbot: Any) -> Iterator[None]:
    """Fail a test that leaves a QThread running or a QTimer active."""
    QThread.start = record_qthread_start  # type: ignore[method-assign]
    _started.clear()
    yield
    try:
        qtbot.waitUntil(lambda: not qt_leftovers(), timeout=3000)
    except pytestqt.exceptions.TimeoutError:
        pytest.fail("the test left Qt running: " + "; ".join(qt_leftovers()), pytrace=False)
    finally:
        QThread.start = _original_start  # type: ignore[method-assign]


@pytest.fixture
def open_window(qtbot: Any) -> Iterator[Callable[[Config, Path], MainWindow]]:
    """``open_window(config, root)``: the main window on ``config``, shown, its engine being
    built behind it; a window the test left open is closed at the end, its engine stopped."""
    windows: list[MainWindow] = []

    def open_(config: Config, root: Path) -> MainWindow:
        host = EngineHost(config)
        window = MainWindow(config, host, settings=QSettings(str(root / "window.ini"),
                                                             QSettings.Format.IniFormat))
        qtbot.addWidget(window)
        window.show()
        host.begin()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        if not window.host.done:
            window.host.hurry()
            qtbot.waitUntil(lambda w=window: w.host.done, timeout=60_000)
