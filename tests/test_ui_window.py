"""The operator window on a real Engine with synthetic cameras (offscreen): it opens at once,
every tile shows frames, a camera that goes away never looks live, and closing the window
stops the engine with nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import engine_config, engine_threads, short_dir
from mjpeg_server import MjpegServer
from ui_helpers import no_qt_leftovers, open_window  # noqa: F401 (fixtures)

from edgeapp.config import StationConfig
from edgeapp.engine.api import CameraState
from edgeapp.ui.engine_host import EnginePhase
from edgeapp.ui.tiles.model import Health

REPO = Path(__file__).resolve().parents[1]
SMALL = {"width": 320, "height": 180}


def test_the_window_opens_at_once_shows_every_camera_and_stops_the_engine_on_close(
        qtbot, open_window, no_qt_leftovers):  # noqa: F811
    # Given a config with two synthetic stations
    root = short_dir()
    config = engine_config(root, [{"name": "north", "seed": 1, **SMALL},
                                  {"name": "south", "seed": 2, **SMALL}])

    # When the window opens
    window = open_window(config, root)

    # Then it is there before the engine is: one tile per station, each saying "starting…"
    assert list(window.grid.tiles) == ["north", "south"]
    assert [t.model.overlay().headline for t in window.grid.tiles.values()] == ["starting…"] * 2
    assert window.host.phase is EnginePhase.BUILDING
    tiles = dict(window.grid.tiles)

    # When the engine runs, then every tile shows live frames, painted, with station figures
    qtbot.waitUntil(lambda: all(t.model.live() and t.frames_shown >= 3
                                for t in window.grid.tiles.values()), timeout=90_000)
    qtbot.waitUntil(lambda: window.host.phase is EnginePhase.RUNNING, timeout=30_000)
    assert window.grid.tiles == tiles, "tiles are painted in place, never rebuilt"
    for tile in window.grid.tiles.values():
        assert tile.model.overlay() is None and tile.model.health() in (Health.OK, Health.SLOW)
    qtbot.waitUntil(lambda: all(t.model.status.fps_in for t in window.grid.tiles.values()),
                    timeout=30_000)
    qtbot.waitUntil(lambda: any(t.model.detections is not None and len(t.model.detections)
                                for t in window.grid.tiles.values()), timeout=30_000)

    # When a station is added, then the grid grows a tile that goes live
    assert window.bridge.add_station(StationConfig(name="east", seed=3, **SMALL))
    qtbot.waitUntil(lambda: "east" in window.grid.tiles
                    and window.grid.tiles["east"].model.live(), timeout=60_000)
    assert window.grid.tiles["north"] is tiles["north"]

    # When a station is removed, then its tile stops looking live at once and says so
    assert window.bridge.remove_station("north")
    qtbot.waitUntil(lambda: "north" not in window.grid.tiles
                    or window.grid.tiles["north"].model.overlay() is not None, timeout=30_000)

    # When the operator closes the window
    window.close()

    # Then it stays, every tile says "stopping…", until the engine has stopped; then it
    # closes, and no engine thread, station or worker process is left
    assert window.isVisible()
    assert {t.model.overlay().headline.split(" at ")[0] for t in window.grid.tiles.values()
            } <= {"stopping…", "stopped"}
    assert window.grid.tiles["south"].model.overlay().headline == "stopping…"
    qtbot.waitUntil(lambda: window.host.done and not window.isVisible(), timeout=120_000)
    assert window.host.phase is EnginePhase.STOPPED
    assert engine_threads() == []


def test_an_engine_that_cannot_start_is_said_on_every_tile_and_the_window_still_closes(
        qtbot, open_window, no_qt_leftovers):  # noqa: F811
    # Given a config whose Collector address cannot be bound (its folder does not exist)
    root = short_dir()
    config = engine_config(root, [{"name": "north", "seed": 1, **SMALL}],
                           distributed={"collector_bind": f"ipc://{root}/missing/c.sock"})

    # When the window opens, then every tile says the engine failed, and why
    window = open_window(config, root)
    qtbot.waitUntil(lambda: window.host.phase is EnginePhase.FAILED, timeout=60_000)
    # (the phase is set on the engine's thread; the tiles hear of it on the GUI thread, from
    # the signal that follows)
    tile = window.grid.tiles["north"].model
    qtbot.waitUntil(lambda: tile.overlay().headline == "engine failed", timeout=5_000)
    assert tile.overlay().detail
    assert window.isVisible(), "the operator must see why before the window goes"

    # When the operator closes it, then it closes at once
    window.close()
    assert not window.isVisible() and window.host.done


def test_settings_apply_restarts_the_engine_on_the_new_config_in_the_same_window(
        qtbot, open_window, no_qt_leftovers):  # noqa: F811
    # Given the window running one station
    root = short_dir()
    window = open_window(engine_config(root, [{"name": "north", "seed": 1, **SMALL}]), root)
    qtbot.waitUntil(lambda: window.grid.tiles["north"].model.live(), timeout=90_000)
    first_host = window.host

    # When the Settings panel applies a config with two other stations
    new = engine_config(root, [{"name": "west", "seed": 4, **SMALL},
                               {"name": "east", "seed": 5, **SMALL}])
    window.panels["SettingsPanel"].restartRequested.emit(new)

    # Then the first engine stops, and the window shows the new stations live, with panels
    qtbot.waitUntil(lambda: window.host is not first_host, timeout=90_000)
    assert first_host.done and first_host.phase is EnginePhase.STOPPED
    assert list(window.grid.tiles) == ["west", "east"]
    qtbot.waitUntil(lambda: all(t.model.live() for t in window.grid.tiles.values()),
                    timeout=90_000)
    assert "SettingsPanel" in window.panels and window.bridge.engine.config is new
    assert window.isVisible()

    # And closing then stops the new engine
    window.close()
    qtbot.waitUntil(lambda: window.host.done and not window.isVisible(), timeout=120_000)
    assert engine_threads() == []


def _short_video(path: Path, frames: int = 20) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 180))
    for i in range(frames):
        writer.write(np.full((180, 320, 3), 40 + i * 5, np.uint8))
    writer.release()
    return path


def test_a_camera_that_goes_away_is_dimmed_with_its_state_and_the_age_of_its_last_frame(
        qtbot, open_window, no_qt_leftovers):  # noqa: F811
    # Given a network camera and a short video file, each on a station of a running window
    root = short_dir()
    server = MjpegServer(fps=10, width=320, height=180).start()
    video = _short_video(root / "clip.avi")
    config = engine_config(root, [{"name": "net", "source": server.url},
                                  {"name": "clip", "source": str(video)}])
    window = open_window(config, root)
    net, clip = window.grid.tiles["net"], window.grid.tiles["clip"]
    try:
        qtbot.waitUntil(lambda: net.model.live() and net.frames_shown >= 2, timeout=90_000)

        # When the network camera's server goes away
        server.stop()

        # Then its tile is no longer live: it says it reconnects (or is offline), since when,
        # and how old the frame on screen is, and that age grows
        def gone() -> bool:
            overlay = net.model.overlay()
            return overlay is not None and overlay.headline.startswith(
                ("reconnecting…", "offline since", "no new frame since"))
        qtbot.waitUntil(gone, timeout=30_000)
        assert net.model.health() is Health.DOWN
        first = net.model.overlay().detail
        assert "last frame " in first and first.endswith(" ago"), first
        age = net.model.frame_age()
        qtbot.wait(1200)
        assert net.model.frame_age() > age + 1.0

        # And the video that ended says so, with the time it ended and its last frame's age
        qtbot.waitUntil(lambda: clip.model.camera is CameraState.ENDED
                        or (clip.model.overlay() is not None
                            and "stopped" in clip.model.overlay().headline), timeout=30_000)
        overlay = clip.model.overlay()
        assert overlay is not None and clip.model.image is not None
        assert time.strftime("%H:") in overlay.headline and overlay.detail.startswith(
            "last frame ")
    finally:
        server.stop()
        # A second close does not wait for the orders on the counters.
        window.close()
        window.close()
        qtbot.waitUntil(lambda: window.host.done and not window.isVisible(), timeout=60_000)
    assert engine_threads() == []


def test_without_a_display_edgeapp_says_so_in_one_line_and_names_headless():
    # Given an environment with no display and no Qt platform chosen
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(REPO)

    # When the window is asked for
    done = subprocess.run([sys.executable, "-m", "edgeapp"], env=env, capture_output=True,
                          text=True, timeout=60)

    # Then one line says there is no display and names --headless, with its own exit code
    assert done.returncode == 15, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no display" in done.stderr
    assert "--headless" in done.stderr


def test_modes_other_than_the_window_never_import_qt():
    # The worker and every other mode build the same parser: it must not pull Qt in.
    code = ("import sys; from edgeapp import cli; cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("count, aspect, columns", [(1, 1.6, 1), (2, 1.6, 1), (2, 3.0, 2),
                                                     (4, 1.6, 2), (8, 1.6, 3), (8, 3.0, 4)])
def test_the_grid_picks_the_columns_that_keep_tiles_largest(count, aspect, columns):
    from edgeapp.ui.tiles.grid import grid_columns

    assert grid_columns(count, aspect) == columns


def test_the_qt_leftover_check_names_an_active_timer_and_a_running_qthread(qtbot):
    from PySide6.QtCore import QThread, QTimer
    from PySide6.QtWidgets import QWidget
    from ui_helpers import qt_leftovers, record_qthread_start

    # Given a widget with a running timer and a started QThread
    widget = QWidget()
    qtbot.addWidget(widget)
    timer = QTimer(widget)
    timer.start(1000)
    thread = QThread()
    record_qthread_start(thread)
    try:
        # Then the check names both, the thread with where it was started
        left = qt_leftovers()
        assert any("QTimer" in line for line in left), left
        assert any("QThread" in line and "test_ui_window.py" in line for line in left), left
    finally:
        timer.stop()
        thread.quit()
        thread.wait()
    # And once they are stopped, nothing is left
    assert qt_leftovers() == []


def test_the_windows_engine_serves_prometheus_metrics_while_it_runs(qtbot):
    # Given the window's engine host asked for a metrics endpoint on any free port
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from edgeapp.ui.engine_host import EngineHost

    host = EngineHost(engine_config(short_dir(), [{"name": "s1", "source": "synthetic",
                                                   "width": 320, "height": 180}]),
                      metrics=(0, "127.0.0.1"))
    host.built.connect(lambda _engine: host.go())
    host.begin()
    try:
        # When it runs
        qtbot.waitUntil(lambda: host.phase in (EnginePhase.RUNNING, EnginePhase.FAILED),
                        timeout=120_000)
        assert host.phase is EnginePhase.RUNNING, host.error
        url = host.metrics_server.url
        # Then a real scrape names its station
        with urllib.request.urlopen(url, timeout=10) as reply:
            families = {f.name: f for f in text_string_to_metric_families(reply.read().decode())}
        assert "edgeapp_stations" in families
        assert "edgeapp_stream_parameter" in families
    finally:
        host.request_stop()
        qtbot.waitUntil(lambda: host.done, timeout=60_000)
    # ... and the endpoint closes with the engine
    assert host.metrics_server is None
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)
