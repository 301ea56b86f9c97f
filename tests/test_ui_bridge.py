"""The engine bridge on a real Engine: events and status arrive as signals on the GUI thread."""

from __future__ import annotations

import threading

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
from engine_helpers import engine_config, short_dir

pytest.importorskip("PySide6")

from edgeapp.engine.engine import Engine  # noqa: E402
from edgeapp.ui.bridge import EngineBridge  # noqa: E402


def test_status_and_a_refused_call_arrive_as_signals_on_the_gui_thread(qtbot):
    # Given a bridge over an engine with one synthetic station
    engine = Engine(engine_config(short_dir(), [{"name": "cam", "seed": 1, "width": 320,
                                                 "height": 180}]))
    bridge = EngineBridge(engine)
    threads: list[threading.Thread] = []
    bridge.notification.connect(lambda _n: threads.append(threading.current_thread()))
    bridge.workerChanged.connect(lambda _w: threads.append(threading.current_thread()))
    try:
        # When the engine starts, its local worker joins (an event of the engine's thread)
        with qtbot.waitSignal(bridge.workerChanged, timeout=30000) as joined:
            engine.start()
        assert type(joined.args[0]).__name__ == "WorkerJoined"

        # When the status timer fires
        with qtbot.waitSignal(bridge.statusUpdated, timeout=5000) as status:
            pass

        # Then the snapshot names the station
        snapshot = status.args[0]
        names = ([s.name for s in snapshot.stations] if hasattr(snapshot, "stations")
                 else [s["name"] for s in snapshot["stations"]])
        assert names == ["cam"]

        # When a display that has the newest frame polls again
        qtbot.waitUntil(lambda: engine.latest_frame("cam") is not None, timeout=30000)
        frame = engine.latest_frame("cam")
        again = engine.latest_frame("cam", unless_seq=frame.seq)

        # Then it gets nothing (no copy), or a newer frame
        assert again is None or again.seq != frame.seq

        # When the operator asks for a level that does not exist
        with qtbot.waitSignal(bridge.notification, timeout=5000) as note:
            accepted = bridge.set_override(fps=99)

        # Then the call is refused as a notification, on the GUI thread, not as an exception
        assert not accepted
        assert "set override refused" in note.args[0].text
        assert threads and set(threads) == {threading.main_thread()}
    finally:
        bridge.close()
        engine.stop(timeout=20)
    assert not bridge._timer.isActive()
