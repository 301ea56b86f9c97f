"""A benchmark run behind the wizard: the runner on its own thread, reports by queued signals.

The runner's progress callback is called on the run's thread; each call is re-emitted as a
signal of this ``QObject``, which lives on the GUI thread, so Qt queues it and no widget is
touched from the run's thread. ``cancel()`` only sets the runner's flag.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from edgeapp.config import Config
from edgeapp.engine.bench.runner import BenchmarkRunner, Progress
from edgeapp.engine.bench.scenarios import Scenario

logger = logging.getLogger(__name__)


class BenchmarkJob(QObject):
    """Runs scenarios once, on the ``edgeapp-benchmark`` thread."""

    progressed = Signal(object)   # Progress
    finished = Signal(object)     # BenchmarkReport (cancelled or not)
    failed = Signal(str)          # the run could not go on: why, in words

    def __init__(self, config: Config, scenarios: list[Scenario], out_dir: Path, *,
                 warmup_s: float = 15.0, cooldown_s: float = 10.0,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = BenchmarkRunner(config, scenarios, out_dir=out_dir,
                                      progress=self._on_progress, warmup_s=warmup_s,
                                      cooldown_s=cooldown_s)
        self._thread = threading.Thread(target=self._run, name="edgeapp-benchmark")

    def start(self) -> None:
        """Begin the run (``progressed`` … then ``finished`` or ``failed``)."""
        self._thread.start()

    def cancel(self) -> None:
        """End the scenario in progress at its next second; skip the rest."""
        self.runner.cancel()

    @property
    def running(self) -> bool:
        """True while the run's thread is alive."""
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run's thread; True once it has ended (or never began)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _emit(self, signal: Any, value: object) -> None:
        """Emit, unless the wizard (and this object with it) is gone: then nobody is
        watching, and the run is cancelled."""
        try:
            signal.emit(value)
        except RuntimeError:  # "Signal source has been deleted"
            self.runner.cancel()

    def _on_progress(self, progress: Progress) -> None:
        self._emit(self.progressed, progress)

    def _run(self) -> None:
        try:
            report = self.runner.run()
        except Exception as exc:  # shown in the wizard; the thread must end cleanly
            logger.exception("the benchmark run failed")
            self._emit(self.failed, str(exc) or repr(exc))
        else:
            self._emit(self.finished, report)
