"""The ``engine-metrics`` thread: reads the machine, the processes, the GPU and the pipeline.

Every ``interval_s`` (0.5 s) it reads the machine's and each watched process's counters (the
engine, each station process, each local worker: the ``processes`` callable names them) and
the GPU; ``system()`` and ``processes()`` give the use over that last interval. About once a
second it adds a ``MetricsPoint`` to the bounded history, with the pipeline's figures from the
engine's ``status`` callable (per-station frames, queue depths) and the per-order latency
percentiles of the last minute. The sampler owns no part of the pipeline: it only calls what
it is handed.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal

from edgeapp.engine.api import EngineStatus, MetricsPoint, StationState, SystemStatus
from edgeapp.engine.metrics.gpu import GpuProbe, GpuUsage, detect_gpu
from edgeapp.engine.metrics.history import MetricsHistory
from edgeapp.engine.metrics.orders import OrderMetrics
from edgeapp.engine.metrics.probe import (
    MachineProbe,
    ProcessUsage,
    Reading,
    machine_cpu_percent,
    process_usage,
)

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.5
HISTORY_INTERVAL_S = 1.0
_KEEP_READINGS_S = 10.0  # the longest span cpu_mean() is asked for, with room

_NO_GPU = GpuUsage(None, None)


class MetricsSampler:
    """Samples every ``interval_s``; start/stop/join like every running part."""

    def __init__(self, *, status: Callable[[], EngineStatus],
                 processes: Callable[[], Mapping[str, int]],
                 orders: OrderMetrics | None = None,
                 gpu: GpuProbe | None | Literal["auto"] = "auto",
                 history: MetricsHistory | None = None,
                 interval_s: float = SAMPLE_INTERVAL_S,
                 history_interval_s: float = HISTORY_INTERVAL_S,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._status = status
        self._processes = processes
        self.orders = orders if orders is not None else OrderMetrics()
        self._gpu_choice = gpu
        self._gpu: GpuProbe | None = None
        self.history = history if history is not None else MetricsHistory()
        self.interval_s = interval_s
        self.history_interval_s = history_interval_s
        self._on_error = on_error
        self._probe = MachineProbe()
        self._lock = threading.Lock()
        self._readings: collections.deque[Reading] = collections.deque(
            maxlen=math.ceil(_KEEP_READINGS_S / interval_s) + 2)
        self._point_reading: Reading | None = None
        self._system = SystemStatus(None, None, None, None)
        self._usage: dict[str, ProcessUsage] = {}
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-metrics", daemon=True)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        """Start sampling (the GPU probe is found on the sampler's thread)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it ends within one interval)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended (or never started)."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # ── readings (any thread) ────────────────────────────────────────────────────────────

    @property
    def gpu_name(self) -> str | None:
        """What the GPU is read through (``None``: no probe, GPU figures are n/a)."""
        return None if self._gpu is None else self._gpu.name

    def system(self) -> SystemStatus:
        """Machine CPU and memory, GPU use and memory, over the last interval."""
        with self._lock:
            return self._system

    def processes(self) -> dict[str, ProcessUsage]:
        """Each watched process (engine, stations, local workers) over the last interval."""
        with self._lock:
            return dict(self._usage)

    def cpu_mean(self, window_s: float) -> float | None:
        """The machine's CPU use over about the last ``window_s`` seconds (one exact mean)."""
        with self._lock:
            readings = list(self._readings)
        if len(readings) < 2:
            return None
        newest = readings[-1]
        oldest = next((r for r in reversed(readings[:-1]) if newest.t - r.t >= window_s),
                      readings[0])
        return machine_cpu_percent(oldest, newest)

    def history_since(self, since: float | None = None) -> list[MetricsPoint]:
        """History points newer than ``since`` (wall-clock s), oldest first; all if None."""
        return self.history.since(since)

    # ── sampling ─────────────────────────────────────────────────────────────────────────

    def sample(self) -> None:
        """Take one reading now (the thread's loop calls this; so may a test)."""
        reading = self._probe.read(self._processes())
        gpu = self._read_gpu()
        with self._lock:
            previous = self._readings[-1] if self._readings else None
            self._readings.append(reading)
            if previous is not None:
                self._system = SystemStatus(machine_cpu_percent(previous, reading),
                                            reading.memory_percent, gpu.percent,
                                            gpu.memory_percent)
                self._usage = process_usage(previous, reading)
            else:
                self._system = SystemStatus(None, reading.memory_percent, gpu.percent,
                                            gpu.memory_percent)
            start = self._point_reading
            due = start is None or \
                reading.t - start.t >= self.history_interval_s - self.interval_s / 2
            if due:
                self._point_reading = reading
        if start is not None and due:
            self.history.append(self._point(start, reading, gpu))

    def _point(self, start: Reading, end: Reading, gpu: GpuUsage) -> MetricsPoint:
        status = self._status()
        usage = process_usage(start, end)
        stations = status.stations
        recent_p95, = self.orders.recent_latency(95)
        queues = status.queues
        return MetricsPoint(
            ts=time.time(),
            cpu_percent=machine_cpu_percent(start, end), memory_percent=end.memory_percent,
            gpu_percent=gpu.percent, gpu_memory_percent=gpu.memory_percent,
            process_cpu_percent={n: u.cpu_percent for n, u in usage.items()
                                 if u.cpu_percent is not None},
            process_rss_mb={n: u.rss_mb for n, u in usage.items()},
            fps_in={s.name: s.fps_in for s in stations},
            fps_processed={s.name: s.fps_out for s in stations},
            frames_dropped={s.name: s.frames_dropped for s in stations},
            orders_per_min=self.orders.orders_per_min(),
            order_latency_p95_s=recent_p95,
            task_queue=queues.tasks, tasks_leased=queues.tasks_leased,
            vlm_queue=queues.vlm_queue, vlm_in_flight=queues.vlm_in_flight,
            events_dropped=queues.events_dropped,
            stations_running=sum(s.state is StationState.RUNNING for s in stations))

    def _read_gpu(self) -> GpuUsage:
        if self._gpu is None:
            return _NO_GPU
        try:
            return self._gpu.read()
        except Exception as exc:  # a driver hiccup: this reading has no GPU figure
            self._report(f"GPU probe ({self._gpu.name}) failed: {exc!r}")
            return _NO_GPU

    def _run(self) -> None:
        if self._gpu_choice == "auto":
            self._gpu = detect_gpu()
        else:
            self._gpu = self._gpu_choice
        logger.info("GPU figures: %s", self.gpu_name or "n/a (no NVIDIA or Intel GPU found)")
        try:
            while True:
                try:
                    self.sample()
                except Exception as exc:  # the sampler must keep sampling
                    logger.debug("metrics sample failed", exc_info=True)
                    self._report(f"metrics sampler: {exc!r}")
                if self._stop.wait(self.interval_s):
                    break
        finally:
            if self._gpu is not None:
                self._gpu.close()

    def _report(self, text: str) -> None:
        """Tell the engine about a failure once (not every half second)."""
        if text in self._reported:
            return
        self._reported.add(text)
        logger.warning("%s", text)
        if self._on_error is not None:
            self._on_error(text)
