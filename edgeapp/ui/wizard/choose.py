"""The wizard's first page: which scenarios to run (the standard set or one custom scenario)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWizardPage,
)

from edgeapp.config import Config
from edgeapp.engine.bench.scenarios import (
    CONTROLLER_KINDS,
    STANDARD_STATIONS,
    FixedParameters,
    Scenario,
    standard_set,
)

DECIDES = "the controller decides"
FROM_CONFIG = "as configured"
GRADES = ("low", "medium", "high")


def _combo(items: list[tuple[str, Any]]) -> QComboBox:
    box = QComboBox()
    for text, data in items:
        box.addItem(text, data)
    return box


def _seconds(value: float, minimum: float = 1.0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(minimum, 24 * 3600.0)
    box.setDecimals(0)
    box.setSuffix(" s")
    box.setValue(value)
    return box


class ScenarioPage(QWizardPage):
    """Standard set or custom scenario, and the run's warm-up and cooldown."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.setTitle("Choose scenarios")
        self.setSubTitle("Each scenario runs in its own Engine, on private sockets and a "
                         "scratch data folder, after a warm-up that is not measured.")
        stream = config.stream
        self.standard = QRadioButton(
            f"Standard set: {', '.join(str(n) for n in STANDARD_STATIONS)} stations")
        self.custom = QRadioButton("Custom scenario")
        self.standard.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.standard)
        group.addButton(self.custom)

        self.duration = _seconds(60.0)
        self.stations = QSpinBox()
        self.stations.setRange(1, 64)
        self.stations.setValue(4)
        self.controller = _combo([(k, k) for k in CONTROLLER_KINDS])
        self.start_grade = _combo([(FROM_CONFIG, None)] + [(g, g) for g in GRADES])
        self.fps_level = _combo([(DECIDES, None)] + [
            (f"{i}: {v:g} of the camera's rate", i) for i, v in enumerate(stream.fps_levels)])
        self.resolution_level = _combo([(DECIDES, None)] + [
            (f"{i}: {v:g} of the camera's size", i)
            for i, v in enumerate(stream.resolution_levels)])
        self.fixed_grade = _combo([(DECIDES, None)] + [(g, g) for g in GRADES])
        self.vlm_backend = _combo([(f"{FROM_CONFIG} ({config.vlm.backend})", None),
                                   ("local", "local"), ("openai", "openai")])
        self.warmup = _seconds(15.0, 0.0)
        self.cooldown = _seconds(10.0, 0.0)

        custom_box = QGroupBox()
        form = QFormLayout(custom_box)
        form.addRow("Stations", self.stations)
        form.addRow("Controller", self.controller)
        form.addRow("Start grade", self.start_grade)
        form.addRow("Pinned FPS", self.fps_level)
        form.addRow("Pinned resolution", self.resolution_level)
        form.addRow("Pinned grade", self.fixed_grade)
        form.addRow("VLM backend", self.vlm_backend)
        self.custom_box = custom_box
        timing = QFormLayout()
        timing.addRow("Measured seconds per scenario", self.duration)
        timing.addRow("Warm-up", self.warmup)
        timing.addRow("Cooldown between scenarios", self.cooldown)
        self.live_note = QLabel()
        self.live_note.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.standard)
        layout.addWidget(self.custom)
        layout.addWidget(custom_box)
        layout.addLayout(timing)
        layout.addWidget(self.live_note)
        self.custom.toggled.connect(custom_box.setEnabled)
        custom_box.setEnabled(False)

    def scenarios(self) -> list[Scenario]:
        """The scenarios as chosen."""
        duration = float(self.duration.value())
        if self.standard.isChecked():
            return standard_set(duration)
        fixed = FixedParameters(self.fps_level.currentData(),
                                self.resolution_level.currentData(),
                                self.fixed_grade.currentData())
        n = self.stations.value()
        return [Scenario(f"custom_{n}_stations", n, duration,
                         controller=self.controller.currentData(),
                         grade=self.start_grade.currentData(), fixed=fixed,
                         vlm_backend=self.vlm_backend.currentData())]

    def initializePage(self) -> None:  # noqa: N802 (Qt's name)
        """Say whether the live engine must stop first."""
        wizard: Any = self.wizard()
        if wizard.live_running():
            self.live_note.setText(
                "The window's live engine is running. The benchmark runs its own Engine, "
                "and the live one's work would distort its figures: it will be stopped "
                "first (you will be asked).")
        else:
            self.live_note.setText("The benchmark runs its own Engine; no live engine is "
                                   "running beside it.")

    def validatePage(self) -> bool:  # noqa: N802 (Qt's name)
        """Ask to stop the live engine, when it runs; the run waits for it to stop."""
        wizard: Any = self.wizard()
        return wizard.confirm_live_stop()
