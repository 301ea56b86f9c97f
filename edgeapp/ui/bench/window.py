"""The ui bench's window process: the real window on N synthetic stations, measured.

What is measured, and how:
- ``fps_offered_per_tile``: distinct frames ``Engine.latest_frame`` served per station and
  second, counted by a reference reader on its own thread that polls every 5 ms (it sees
  every frame the engine makes available to a tile, however slow the window is).
- ``fps_shown_per_tile``: distinct frames each tile painted per second (a frame counts once,
  when a paint first draws it).
- ``ui_frame_ms``: wall-clock time of one display refresh that showed a new frame: the
  timer's pull of every station's frame plus the paints that follow it, until the next pull
  (time spent waiting for a CPU or for Python's GIL, held by the engine's threads in the same
  process, counts). ``ui_frame_cpu_ms``: the GUI thread's CPU time for the same work, which
  tells the window's own cost from a starved machine's.
- ``ui_thread_busy_share``: CPU time of the GUI thread (``time.thread_time``) / wall time,
  over the measured window: everything the GUI thread did, panels and status polls included.
- ``seconds_to_window``: process spawn -> the first paint of a tile (the window on screen).
- ``seconds_to_first_live_tile``: process spawn -> the first paint of a live frame.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from edgeapp.engine.metrics import percentiles

_READER_PERIOD_S = 0.005
_ALL_LIVE_WAIT_S = 120.0


def bench_config(spec: dict[str, Any], root: Path) -> Any:
    """The user's config (or the demo) with N synthetic stations at full FPS, the static
    controller, and private sockets and data under ``root``."""
    from edgeapp.config import StationConfig, load_config

    cfg = load_config(spec["config"])
    stations = tuple(StationConfig(name=f"station-{i + 1}", seed=i, fps=spec["fps"],
                                   width=spec["width"], height=spec["height"])
                     for i in range(spec["stations"]))
    return dataclasses.replace(
        cfg, stations=stations, data_dir=root / "data",
        stream=dataclasses.replace(cfg.stream, start_fps_level=1.0),
        controller=dataclasses.replace(cfg.controller, kind="static"),
        distributed=dataclasses.replace(cfg.distributed, producer_bind=f"ipc://{root}/p.sock",
                                        collector_bind=f"ipc://{root}/c.sock"))


class OfferedFrames:
    """The reference reader: distinct frames ``latest_frame`` serves, per station."""

    def __init__(self, engine: Any, names: list[str]) -> None:
        self.engine, self.names = engine, names
        self.counts = dict.fromkeys(names, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeapp-bench-reader")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seqs: dict[str, int | None] = dict.fromkeys(self.names)
        while not self._stop.wait(_READER_PERIOD_S):
            for name in self.names:
                frame = self.engine.latest_frame(name, unless_seq=seqs[name])
                if frame is not None:
                    seqs[name] = frame.seq
                    self.counts[name] += 1


class Recorder:
    """The GUI-thread figures: display refreshes, first paints, frames shown."""

    def __init__(self, launched_at: float) -> None:
        self.launched_at = launched_at
        self.to_window: float | None = None
        self.to_live: float | None = None
        self.frame_ms: list[float] = []
        self.frame_cpu_ms: list[float] = []
        self.measuring = False
        self._cycle = self._cycle_cpu = 0.0
        self._cycle_new = False

    def on_tick(self, seconds: float, cpu: float) -> None:
        if self.measuring and self._cycle_new:
            self.frame_ms.append(self._cycle * 1000.0)
            self.frame_cpu_ms.append(self._cycle_cpu * 1000.0)
        self._cycle, self._cycle_cpu, self._cycle_new = seconds, cpu, False

    def on_paint(self, tile: Any, seconds: float, cpu: float, new_frame: bool) -> None:
        self._cycle += seconds
        self._cycle_cpu += cpu
        self._cycle_new = self._cycle_new or new_frame
        now = time.time()
        if self.to_window is None:
            self.to_window = now - self.launched_at
        if self.to_live is None and new_frame and tile.model.live():
            self.to_live = now - self.launched_at


def main(argv: list[str]) -> int:
    """Run the bench described by the JSON in ``argv[0]``; print one JSON object."""
    spec = json.loads(argv[0])
    recorder = Recorder(spec["launched_at"])
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from edgeapp.ui.engine_host import EngineHost
    from edgeapp.ui.main_window import MainWindow

    root = Path(tempfile.mkdtemp(prefix="ea-ui-bench-", dir="/tmp"))
    cfg = bench_config(spec, root)
    app = QApplication([sys.argv[0]])
    host = EngineHost(cfg)
    window = MainWindow(cfg, host, title="ui bench",
                        settings=QSettings(str(root / "window.ini"), QSettings.Format.IniFormat))
    window.grid.on_tick = recorder.on_tick
    for tile in window.grid.tiles.values():
        tile.on_paint = recorder.on_paint
    names = list(window.grid.tiles)
    result: dict[str, Any] = {}
    state: dict[str, Any] = {}

    def all_live() -> bool:
        return all(t.model.live() for t in window.grid.tiles.values())

    def begin() -> None:
        engine = window.grid.engine
        if engine is None or not all_live():
            if time.time() - spec["launched_at"] > _ALL_LIVE_WAIT_S:
                result["error"] = "not every tile was live within 120 s"
                window.close()
                return
            QTimer.singleShot(200, begin)
            return
        reader = OfferedFrames(engine, names)
        reader.start()
        state.update(reader=reader, wall=time.monotonic(), cpu=time.thread_time(),
                     shown={n: t.frames_shown for n, t in window.grid.tiles.items()})
        recorder.measuring = True
        QTimer.singleShot(int(spec["duration"] * 1000), end)

    def end() -> None:
        recorder.measuring = False
        wall = time.monotonic() - state["wall"]
        cpu = time.thread_time() - state["cpu"]
        state["reader"].stop()
        offered = {n: c / wall for n, c in state["reader"].counts.items()}
        shown = {n: (t.frames_shown - state["shown"][n]) / wall
                 for n, t in window.grid.tiles.items()}
        p50, p99 = percentiles(recorder.frame_ms, 50, 99)
        c50, c99 = percentiles(recorder.frame_cpu_ms, 50, 99)
        result.update({
            "tiles": len(names),
            "fps_offered_per_tile": round(sum(offered.values()) / len(offered), 2),
            "fps_shown_per_tile_min": round(min(shown.values()), 2),
            "shown_share_min": round(min(shown[n] / offered[n] if offered[n] else 0.0
                                         for n in names), 3),
            "ui_frame_ms_p50": None if p50 is None else round(p50, 2),
            "ui_frame_ms_p99": None if p99 is None else round(p99, 2),
            "ui_frame_cpu_ms_p50": None if c50 is None else round(c50, 2),
            "ui_frame_cpu_ms_p99": None if c99 is None else round(c99, 2),
            "ui_thread_busy_share": round(cpu / wall, 3),
            "seconds_to_window": round(recorder.to_window or -1, 3),
            "seconds_to_first_live_tile": round(recorder.to_live or -1, 3),
            "frame_size": f"{spec['width']}x{spec['height']}",
            "camera_fps": spec["fps"],
            "duration_s": round(wall, 1),
            "ui_frames": len(recorder.frame_ms),
        })
        window.close()

    window.show()
    host.begin()
    QTimer.singleShot(200, begin)
    app.exec()
    host.join()
    print(json.dumps(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
