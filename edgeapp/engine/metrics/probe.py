"""Machine and per-process CPU and memory, from psutil's raw counters.

A ``Reading`` holds counters (CPU seconds), not percentages: the use between any two readings
is their difference over the time between them, so the sampler can give the last 0.5 s, the
last second of the history and the controller's 3 s mean from the same reads, each exact.
A process's CPU is in percent of one core (as ``top`` shows it: 2 busy threads = 200 %); the
machine's is in percent of all cores.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ProcessReading:
    """One process's counters at one moment."""

    pid: int
    cpu_s: float            # user + system CPU seconds since the process started
    rss_bytes: int


@dataclass(frozen=True)
class Reading:
    """The machine's and the watched processes' counters at one moment."""

    t: float                # time.monotonic()
    busy_s: float           # machine CPU seconds spent busy, all cores
    total_s: float          # machine CPU seconds, all cores
    memory_percent: float
    processes: Mapping[str, ProcessReading]   # by name: engine / station / worker


@dataclass(frozen=True)
class ProcessUsage:
    """One process's use between two readings."""

    pid: int
    cpu_percent: float | None   # of one core; None for a process first seen in the later read
    rss_mb: float


def machine_cpu_percent(old: Reading, new: Reading) -> float | None:
    """The machine's CPU use between two readings, in percent of all cores."""
    total = new.total_s - old.total_s
    if total <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (new.busy_s - old.busy_s) / total))


def process_usage(old: Reading, new: Reading) -> dict[str, ProcessUsage]:
    """Each process of ``new``: its CPU between the readings and its resident memory now."""
    span = new.t - old.t
    usage = {}
    for name, proc in new.processes.items():
        before = old.processes.get(name)
        cpu = None
        if before is not None and before.pid == proc.pid and span > 0:
            cpu = max(0.0, 100.0 * (proc.cpu_s - before.cpu_s) / span)
        usage[name] = ProcessUsage(proc.pid, cpu, proc.rss_bytes / 2**20)
    return usage


class MachineProbe:
    """Reads the machine's counters and those of the processes it is told about."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def read(self, pids: Mapping[str, int]) -> Reading:
        """The counters now, for the machine and each of ``pids`` (name -> pid) still alive."""
        cpu = psutil.cpu_times()
        total = _total_cpu_s(cpu)
        busy = total - cpu.idle - getattr(cpu, "iowait", 0.0)
        processes = {}
        for name, pid in pids.items():
            reading = self._read_process(pid)
            if reading is not None:
                processes[name] = reading
        self._procs = {pid: p for pid, p in self._procs.items() if pid in set(pids.values())}
        return Reading(time.monotonic(), busy, total, float(psutil.virtual_memory().percent),
                       processes)

    def _read_process(self, pid: int) -> ProcessReading | None:
        try:
            proc = self._procs.get(pid)
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            with proc.oneshot():
                # is_running() also checks the create time: a reused pid is another process.
                if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
                times = proc.cpu_times()
                rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self._procs.pop(pid, None)
            return None
        return ProcessReading(pid, times.user + times.system, rss)


def _total_cpu_s(cpu: object) -> float:
    """All CPU seconds; Linux counts guest time inside user time too, so it comes off once."""
    fields = cpu._asdict()  # type: ignore[attr-defined]
    return sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
