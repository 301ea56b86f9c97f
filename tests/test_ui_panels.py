"""The window's panels on a real Engine with a synthetic camera, offscreen: what an operator
sees and does — orders with their evidence, overrides, the controller, stations, errors."""

from __future__ import annotations

import csv
import os
import signal
import time

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
import yaml
from engine_helpers import engine_config, short_dir

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from edgeapp.engine.engine import Engine  # noqa: E402
from edgeapp.ui.bridge import EngineBridge  # noqa: E402
from edgeapp.ui.panels import (  # noqa: E402
    PANELS,
    ControlPanel,
    HistoryPanel,
    MetricsPanel,
    NotificationsPanel,
    OrdersPanel,
    SettingsPanel,
)
from edgeapp.ui.panels.order_detail import item_rows  # noqa: E402

# Every order packed wrong, small frames: verdicts come quickly and most are mismatches.
CAMERA = {"seed": 3, "wrong_order_rate": 1.0, "width": 640, "height": 360}
VERDICT_TIMEOUT_MS = 120_000
# The tests that need an engine of their own judge no order: the smallest frames, no waiting
# for orders at stop.
SPARE = [{"name": "counter", **CAMERA, "width": 320, "height": 180}]


@pytest.fixture(scope="module")
def bridge(qapp):
    """One running engine (one station, one local worker) and its bridge for the module."""
    engine = Engine(engine_config(short_dir(), [{"name": "counter", **CAMERA}]))
    bridge = EngineBridge(engine)
    engine.start()
    try:
        # Every process of the engine exists before the first test counts its children.
        deadline = time.monotonic() + 60
        while not _serving(engine.status()):
            assert time.monotonic() < deadline, "the engine did not start serving in 60 s"
            time.sleep(0.1)
        yield bridge
    finally:
        bridge.close()
        engine.stop(timeout=20, finish_orders=False)


def _serving(status) -> bool:
    return (bool(status.workers) and bool(status.stations)
            and all(s.state.value == "running" for s in status.stations))


def _status(bridge):
    return bridge.engine.status()


def _show(qtbot, panel):
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    return panel


def test_every_panel_paints_the_running_engine(bridge, qtbot):
    # Given every panel over the running engine
    panels = {cls.TITLE: _show(qtbot, cls(bridge)) for cls in PANELS}

    # When a few statuses have arrived and the local worker works
    qtbot.waitUntil(lambda: panels["Workers"].table.rowCount() == 1, timeout=30_000)
    qtbot.waitUntil(lambda: panels["Workers"].table.item(0, 4).text() not in ("", "0"),
                    timeout=30_000)

    # Then nothing is left blank: SLO lights have values with units, the worker is listed
    # as active, the sliders show the parameters in force, the timeline has begun
    slos = panels["SLOs"]
    memory = next(row for row in slos.rows.values() if row.title == "Memory")
    assert memory.value.text().endswith("/ 90 %") and not memory.value.text().startswith(
        "n/a"), memory.value.text()
    assert slos.summary.text() != "waiting for the engine's first status…"
    workers = panels["Workers"].table
    assert workers.item(0, 7).text() == "active"
    assert workers.item(0, 1).text().endswith("(local, pid " + str(
        _status(bridge).workers[0].pid) + ")")
    control = panels["Control"]
    assert control.sliders.fps.value.text() == "5.0 fps (33 %)", "15 fps camera at 0.33"
    assert control.sliders.fps.set_by.text() == "set by config"
    assert panels["History"].timeline.started
    assert panels["Settings"].verdict.text() == "config ok: 1 station"


def test_a_mismatched_order_shows_with_its_items_and_evidence_and_exports(bridge, qtbot,
                                                                          tmp_path):
    # Given the orders panel while the station packs every order wrong
    panel = _show(qtbot, OrdersPanel(bridge))

    # When the engine judges a mismatch
    def mismatches():
        return [r for r in panel.model.results() if r.status.value == "mismatch"]
    qtbot.waitUntil(lambda: bool(mismatches()), timeout=VERDICT_TIMEOUT_MS)
    result = mismatches()[0]

    # Then its row says what is missing, extra or of the wrong quantity
    assert not panel.detail.isVisibleTo(panel), "no detail before an order is selected"
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("mismatch"))
    assert {r.status.value for r in panel.proxy.shown()} == {"mismatch"}
    assert panel.select_order(result.result_id)
    row = panel.table.selectionModel().selectedRows()[0].row()
    cells = [panel.proxy.index(row, col).data() for col in range(8)]
    assert cells[1:4] == ["counter", result.order_id, "mismatch"]
    assert cells[4] == (", ".join(result.missing) or "—")
    assert cells[5] == (", ".join(result.extra) or "—")
    for q in result.quantity_mismatch:
        assert f"{q.name} {q.expected}→{q.detected}" in cells[6]
    assert cells[7].endswith(" s")

    # ... the detail lists expected against detected items and shows every evidence frame
    detail = panel.detail
    assert detail.isVisibleTo(panel), "selecting an order shows its detail"
    assert detail.result is result
    shown_items = [tuple(detail.items.item(r, c).text() for c in range(4))
                   for r in range(detail.items.rowCount())]
    assert shown_items == [(n, str(e), str(d), v) for n, e, d, v in item_rows(result)]
    assert any(v != "ok" for *_, v in shown_items), "a mismatch has a differing item"
    frames = detail.evidence_labels()
    assert [f.property("evidence") for f in frames] == list(result.evidence)
    assert all(not f.pixmap().isNull() for f in frames)

    # ... searching its order ID finds it
    panel.search.setText(result.order_id)
    assert result in panel.proxy.shown()
    assert all(result.order_id in r.order_id for r in panel.proxy.shown())

    # When the operator exports the rows shown
    path = tmp_path / "orders.csv"
    n = panel.export_csv(path)

    # Then the file holds exactly those rows, with the differences as JSON
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == len(panel.proxy.shown())
    exported = next(r for r in rows if r["result_id"] == result.result_id)
    assert exported["status"] == "mismatch" and exported["order_id"] == result.order_id
    assert yaml.safe_load(exported["missing"]) == list(result.missing)
    assert yaml.safe_load(exported["evidence"]) == list(result.evidence)

    # When the window opens again, then the stored orders are there before any new verdict
    again = _show(qtbot, OrdersPanel(bridge))
    qtbot.waitUntil(lambda: result.result_id in {r.result_id for r in again.model.results()},
                    timeout=30_000)


def test_moving_a_slider_overrides_the_engine_and_auto_gives_it_back(bridge, qtbot,
                                                                    monkeypatch):
    # Given the control panel showing the parameters in force (FPS at its lowest level),
    # and the history
    panel = _show(qtbot, ControlPanel(bridge))
    history = _show(qtbot, HistoryPanel(bridge))
    fps = panel.sliders.fps
    qtbot.waitUntil(lambda: fps.slider.isEnabled() and fps.set_by.text() != "n/a",
                    timeout=30_000)
    start = _status(bridge).parameters
    assert start.override == {} and start.fps_level == len(start.fps_levels) - 1
    sent = []
    original = bridge.set_override
    monkeypatch.setattr(bridge, "set_override",
                        lambda **kw: (sent.append(kw), original(**kw))[1])

    # When the operator drags the FPS slider over three positions up to the top
    for position in (1, 2, fps.slider.maximum()):
        fps.slider.setValue(position)

    # Then the engine runs at the full camera rate, pinned by the operator ...
    qtbot.waitUntil(lambda: _status(bridge).parameters.override == {"fps_level": 0},
                    timeout=30_000)
    params = _status(bridge).parameters
    assert params.fps_level == 0 and params.set_by.value == "operator"
    # ... after a throttled handful of commands (the first at once, the last value trailing)
    assert sent == [{"fps": 2}, {"fps": 0}], sent
    assert not fps.auto.isChecked()
    qtbot.waitUntil(lambda: (fps.value.text(), fps.set_by.text())
                    == ("15.0 fps (100 %)", "set by operator"), timeout=30_000)

    # ... and the history tells both steps, newest first, with who made them
    def rows():
        return [tuple(history.table.item(r, c).text() for c in (1, 2, 3))
                for r in range(history.table.rowCount())]
    qtbot.waitUntil(lambda: len(rows()) >= 2, timeout=30_000)
    assert rows()[:2] == [("FPS", "50 % → 100 %", "operator"), ("FPS", "33 % → 50 %", "operator")]
    assert history.timeline.series["fps"].values[-1] == 100.0

    # When the operator switches Auto back on
    qtbot.mouseClick(fps.auto, Qt.MouseButton.LeftButton)

    # Then the pin is released: the controller sets FPS again
    qtbot.waitUntil(lambda: _status(bridge).parameters.override == {}, timeout=30_000)
    qtbot.waitUntil(lambda: fps.set_by.text() in ("set by config", "set by static controller"),
                    timeout=30_000)
    assert fps.auto.isChecked()
    bridge.set_override(fps=start.fps_level)  # leave the module's engine as it was
    bridge.clear_override()


def test_the_controller_switch_reaches_the_engine(bridge, qtbot):
    # Given the control panel over an engine run by the static controller
    panel = _show(qtbot, ControlPanel(bridge))
    qtbot.waitUntil(lambda: panel.controller_state.text().startswith("static"),
                    timeout=30_000)
    buttons = {b.property("kind"): b for b in panel.controller_buttons.buttons()}
    assert buttons["static"].isChecked()

    # When the operator picks the heuristic controller
    buttons["heuristic"].click()

    # Then the engine runs it, and the panel says so once the engine does
    qtbot.waitUntil(lambda: _status(bridge).control.controller == "heuristic", timeout=30_000)
    qtbot.waitUntil(lambda: panel.controller_state.text().startswith("heuristic: ready"),
                    timeout=30_000)
    assert buttons["heuristic"].isChecked() and not buttons["static"].isChecked()
    buttons["static"].click()
    qtbot.waitUntil(lambda: _status(bridge).control.controller == "static", timeout=30_000)


def test_adding_and_removing_a_station(bridge, qtbot, monkeypatch):
    # Given the control panel listing the one station
    panel = _show(qtbot, ControlPanel(bridge))
    stations = panel.stations
    qtbot.waitUntil(lambda: stations.station_names() == ["counter"], timeout=30_000)

    # When the operator adds a synthetic station called "extra"
    stations.name.setText("extra")
    stations.source.setText("synthetic")
    qtbot.mouseClick(stations.add_button, Qt.MouseButton.LeftButton)

    # Then the engine runs it (a camera like the configured one) and the table lists it
    def state(name):
        s = _status(bridge).station(name)
        return None if s is None else s.state.value
    qtbot.waitUntil(lambda: state("extra") == "running", timeout=60_000)
    qtbot.waitUntil(lambda: "extra" in stations.station_names(), timeout=30_000)
    row = stations.station_names().index("extra")
    qtbot.waitUntil(lambda: stations.table.item(row, 1).text().startswith("running"),
                    timeout=30_000)

    # When the operator removes it (and confirms)
    monkeypatch.setattr(stations, "confirm", lambda *_: True)
    stations.table.selectRow(row)
    qtbot.mouseClick(stations.remove_button, Qt.MouseButton.LeftButton)

    # Then it stops (after its order) and the table says so; the first station runs on
    qtbot.waitUntil(lambda: state("extra") in (None, "stopped"), timeout=60_000)
    qtbot.waitUntil(lambda: stations.table.item(row, 1).text().startswith("stopped"),
                    timeout=30_000)
    assert state("counter") == "running"


def test_a_bad_station_in_the_form_is_refused_by_key(bridge, qtbot):
    # Given the control panel's add form
    panel = _show(qtbot, ControlPanel(bridge))
    requested = []
    panel.stations.addRequested.connect(requested.append)

    # When the operator gives a source that is not a camera
    panel.stations.name.setText("bad")
    panel.stations.source.setText("usb:zero")
    qtbot.mouseClick(panel.stations.add_button, Qt.MouseButton.LeftButton)

    # Then nothing is sent, and the line names the key and what is expected
    assert requested == []
    assert panel.stations.error.isVisibleTo(panel)
    assert panel.stations.error.text().startswith("stations[0].source = 'usb:zero'")


def test_settings_check_a_config_by_key_and_apply_asks_for_a_restart(bridge, qtbot, tmp_path,
                                                                      monkeypatch):
    # Given a config file whose second station has a bad source
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({
        "stations": [{"name": "front", "source": "synthetic"},
                     {"name": "back", "source": "usb:x"}],
        "vlm": {"backend": "local"}}))
    panel = _show(qtbot, SettingsPanel(bridge))
    restarts = []
    panel.restartRequested.connect(restarts.append)

    # When the operator opens it
    assert panel.open_config(path)

    # Then the error names the key, marks the station's row, and Apply is off
    assert panel.verdict.text().startswith("stations[1].source = 'usb:x'")
    assert not panel.apply_button.isEnabled()
    bad = panel.stations.item(1, 1).background().color()
    assert bad != panel.stations.item(0, 1).background().color()

    # When the source is fixed, the VLM set to a server, and Apply confirmed
    panel.stations.item(1, 1).setText("usb:0")
    panel.backend.setCurrentIndex(panel.backend.findData("openai"))
    panel.url.setText("http://10.0.0.5:8000")
    panel.url.editingFinished.emit()
    assert panel.verdict.text() == "config ok: 2 stations"
    monkeypatch.setattr(panel, "confirm", lambda *_: True)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)

    # Then the window is asked to restart on exactly that config
    (config,) = restarts
    assert [(s.name, s.source) for s in config.stations] == [("front", "synthetic"),
                                                             ("back", "usb:0")]
    assert (config.vlm.backend, config.vlm.url) == ("openai", "http://10.0.0.5:8000")


def test_an_engine_error_shows_as_a_banner_and_in_the_log(qapp, qtbot):
    # Given the notifications panel over an engine of its own (its worker will be killed)
    engine = Engine(engine_config(short_dir(), SPARE))
    bridge = EngineBridge(engine)
    panel = _show(qtbot, NotificationsPanel(bridge))
    try:
        with qtbot.waitSignal(bridge.workerChanged, timeout=30_000):
            engine.start()
        qtbot.waitUntil(lambda: bool(engine.status().workers), timeout=30_000)
        (worker,) = engine.status().workers
        assert not panel.banner.isVisibleTo(panel)

        # When the local worker process dies
        os.kill(worker.pid, signal.SIGKILL)

        # Then the engine's error is in the log and on the banner
        qtbot.waitUntil(lambda: panel.banner.isVisibleTo(panel), timeout=30_000)
        assert "Error" in panel.banner_text.text()
        assert any(str(worker.pid) in m or "worker" in m for m in panel.messages())
        errors = [panel.table.item(r, 1).text() for r in range(panel.table.rowCount())]
        assert "error" in errors

        # When the operator dismisses the banner, the log keeps the message
        qtbot.mouseClick(panel.dismiss, Qt.MouseButton.LeftButton)
        assert not panel.banner.isVisibleTo(panel)
        assert panel.table.rowCount() == len(errors)
    finally:
        bridge.close()
        engine.stop(timeout=20, finish_orders=False)


def test_autoscaling_set_in_the_control_panel_shows_in_the_history(qapp, qtbot):
    # Given an engine of its own (it will get a second station) with autoscaling off,
    # the control panel and the history
    engine = Engine(engine_config(short_dir(), SPARE))
    bridge = EngineBridge(engine)
    control = _show(qtbot, ControlPanel(bridge))
    history = _show(qtbot, HistoryPanel(bridge))

    def scaling_rows(panel):
        return [tuple(panel.table.item(r, c).text() for c in (1, 2, 3, 4))
                for r in range(panel.table.rowCount())
                if panel.table.item(r, 1).text().startswith("Stations")]
    try:
        engine.start()
        qtbot.waitUntil(lambda: _serving(engine.status()), timeout=60_000)
        assert not control.autoscaling.isChecked()

        # When the operator asks for at least two stations and switches autoscaling on
        control.min_stations.setValue(2)
        qtbot.mouseClick(control.autoscaling, Qt.MouseButton.LeftButton,
                         pos=control.autoscaling.rect().topLeft() + QPoint(8, 8))

        # Then the engine autoscales with those bounds and adds a station ...
        qtbot.waitUntil(lambda: engine.status().control.autoscaling, timeout=30_000)
        assert engine.status().control.min_stations == 2
        qtbot.waitUntil(lambda: bool(scaling_rows(history)), timeout=30_000)

        # ... and the history tells what, from → to, who and why, with the timeline at 2
        what, change, by, reason = scaling_rows(history)[-1]
        assert (what, change, by) == ("Stations: scale up", "1 → 2 (station-2)", "autoscaler")
        assert "min_stations 2" in reason
        qtbot.waitUntil(lambda: history.timeline.series["stations"].values[-1] == 2.0,
                        timeout=60_000)

        # When the window opens again, then the decision comes from the engine's kept history
        again = _show(qtbot, HistoryPanel(bridge))
        qtbot.waitUntil(lambda: scaling_rows(again)[-1:] == scaling_rows(history)[-1:],
                        timeout=30_000)
    finally:
        bridge.close()
        engine.stop(timeout=20, finish_orders=False)


def test_metrics_plot_the_engines_history_and_say_na_for_an_unmeasured_gpu(bridge, qtbot):
    # Given the metrics panel over the running engine
    panel = _show(qtbot, MetricsPanel(bridge))
    qtbot.waitUntil(lambda: len(panel.ts) >= 2, timeout=30_000)
    first = len(panel.ts)

    # When more samples arrive
    qtbot.waitUntil(lambda: len(panel.ts) > first, timeout=30_000)

    # Then every curve holds one value per sample, the newest the engine's own
    history = {p.ts: p for p in bridge.engine.metrics_history()}
    newest = history[panel.ts[-1]]
    plots = {plot.title: plot for plot in panel.plots}
    for plot in panel.plots:
        for line in plot.lines:
            assert len(line.xData) == len(panel.ts), plot.title
    cpu = plots["CPU and memory"].lines[0].yData[-1]
    assert cpu == pytest.approx(newest.cpu_percent)
    assert "CPU" in plots["CPU and memory"].widget.getPlotItem().titleLabel.text

    # ... and a GPU that is not measured reads n/a, never 0
    gpu = plots["GPU"]
    if all(p.gpu_percent is None for p in history.values()):
        assert gpu.na.isVisible()
        assert gpu.widget.getPlotItem().titleLabel.text.endswith("GPU: n/a")
    else:
        assert not gpu.na.isVisible()
