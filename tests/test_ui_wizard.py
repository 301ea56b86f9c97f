"""The benchmark wizard (offscreen): a 5-second scenario from the first page to the results,
the window responsive meanwhile, and the export; the window's menu opens it."""

from __future__ import annotations

import csv
import json

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import engine_config, engine_threads, short_dir
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QWizard
from ui_helpers import no_qt_leftovers  # noqa: F401 (fixture)

from edgeapp.ui.engine_host import EngineHost
from edgeapp.ui.main_window import MainWindow
from edgeapp.ui.wizard import BenchmarkWizard

SMALL = {"width": 320, "height": 180}
Commit, Next, Finish = (QWizard.WizardButton.CommitButton, QWizard.WizardButton.NextButton,
                        QWizard.WizardButton.FinishButton)


def test_a_five_second_scenario_runs_to_the_results_and_exports_its_files(
        qtbot, tmp_path, no_qt_leftovers):  # noqa: F811
    # Given the wizard on a small config (one local worker), no live engine beside it
    root = short_dir()
    wizard = BenchmarkWizard(engine_config(root, [{"name": "s", "seed": 3, **SMALL}]),
                             results_dir=tmp_path / "out")
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.choose
    assert "no live engine" in page.live_note.text()

    # When the operator chooses one custom scenario of 5 s and presses Run
    page.custom.setChecked(True)
    page.stations.setValue(1)
    page.controller.setCurrentIndex(page.controller.findData("static"))
    page.duration.setValue(5)
    page.warmup.setValue(1)
    page.cooldown.setValue(0)
    wizard.button(Commit).click()

    # Then the run page runs it: Next disabled, the window responsive, progress and a curve
    run = wizard.run_page
    assert wizard.currentPage() is run
    qtbot.waitUntil(lambda: run.running, timeout=10_000)
    assert not wizard.button(Commit).isEnabled(), "no results while the run goes on"
    ticks = []
    timer = QTimer(wizard)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(50)
    qtbot.waitUntil(lambda: bool(run.curves) and run.bar.value() > 0, timeout=120_000)
    timer.stop()
    assert len(ticks) >= 5, "the GUI thread kept running while the engine warmed up"
    qtbot.waitUntil(lambda: run.report is not None, timeout=120_000)
    assert wizard.button(Commit).isEnabled()
    (result,) = run.report.results
    assert result.error is None and result.duration_s >= 5.0 and result.frames > 0
    xs, _ = run.curves["custom_1_stations"].getData()
    assert len(xs) == 5, "one point a measured second"

    # When they go on to the results
    wizard.button(Commit).click()

    # Then the table holds the scenario's figures and the plots have their bars
    results = wizard.results
    assert wizard.currentPage() is results
    assert results.table.rowCount() == 1
    headers = [results.table.horizontalHeaderItem(c).text()
               for c in range(results.table.columnCount())]
    row = {h: results.table.item(0, c).text() for c, h in enumerate(headers)}
    assert row["scenario"] == "custom_1_stations" and row["orders"] == str(result.orders)
    assert row["frames/s"] == f"{result.frames_per_s:.1f}"
    assert row["GPU avg / max"] == "n/a" or result.gpu_avg is not None
    assert len(results.latency.getPlotItem().items) == 4  # avg, p50, p95, p99

    # When they export
    wizard.button(Next).click()
    assert wizard.currentPage() is wizard.export
    written = wizard.export.export()

    # Then JSON, CSV, both plots and the scenario's results store are in the folder
    out = tmp_path / "out"
    assert {p.parent for p in written} == {out}
    names = sorted(p.name for p in out.iterdir())
    assert [n.rsplit("_", 1)[-1] if "_" in n else n for n in names if n.endswith(".png")] \
        == ["latency.png", "throughput.png"]
    (json_file,) = out.glob("*.json")
    data = json.loads(json_file.read_text())
    assert data["scenarios"][0]["scenario"]["name"] == "custom_1_stations"
    with open(next(out.glob("*.csv")), newline="") as f:
        (csv_row,) = csv.DictReader(f)
    assert int(csv_row["orders"]) == result.orders
    assert (out / result.results_db).stat().st_size > 0

    # When they finish, the scratch folder goes and nothing keeps running
    staging = wizard.staging
    wizard.button(Finish).click()
    assert not staging.exists()
    assert not engine_threads(), engine_threads()


def test_the_window_menu_opens_the_wizard(qtbot, no_qt_leftovers):  # noqa: F811
    # Given the window whose engine was never started
    root = short_dir()
    config = engine_config(root, [{"name": "s", **SMALL}])
    window = MainWindow(config, EngineHost(config),
                        settings=QSettings(str(root / "w.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)

    # When the operator picks File → Benchmark…
    file_menu = window.menuBar().actions()[0].menu()
    (action,) = [a for a in file_menu.actions() if a.text() == "&Benchmark…"]
    action.trigger()

    # Then the wizard is open on the scenarios, and says no live engine must stop
    wizard = window.benchmark
    assert isinstance(wizard, BenchmarkWizard) and wizard.isVisible()
    assert not wizard.live_running()
    assert "no live engine" in wizard.choose.live_note.text()
    wizard.reject()
    assert not wizard.isVisible()
