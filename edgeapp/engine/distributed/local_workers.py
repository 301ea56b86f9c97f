"""Inference workers on this machine: ``edgeapp --worker`` child processes the engine owns.

One path everywhere: the engine's own workers are the same program an edge box runs, started
as child processes that connect to the Producer over loopback. A worker that dies is reported
(``poll``, with the end of its log) and can be restarted; ``stop`` sends SIGTERM (the worker
drains and leaves), waits, then kills what is left, so stopping never hangs. Each worker's
stderr goes to ``<log_dir>/<name>.log`` (a pipe could fill up and block a chatty worker).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Set for the engine's local workers: the engine's pid, which they outlive by seconds only
#: (``edgeapp --worker --child`` leaves when that process is gone, even after kill -9).
ENGINE_PID_ENV = "EDGEAPP_ENGINE_PID"

# Local workers share the engine's cores. At a lower priority than the engine they yield
# the CPU to its VLM batcher, stations and OCR: on the demo the VLM's answer waited 1-2 s
# behind frame detection at equal priority. The controller keeps the frame latency in check.
LOCAL_WORKER_NICE = 5


@dataclass(frozen=True)
class WorkerExited:
    """A local worker process ended on its own (not through ``stop``)."""

    index: int
    pid: int
    returncode: int
    stderr_tail: str


class LocalWorkers:
    """``count`` worker processes connected to ``producer_address``."""

    def __init__(self, count: int, producer_address: str, *,
                 collector_address: str | None = None, keys_dir: str | Path | None = None,
                 extra_args: Sequence[str] = (), name_prefix: str = "local",
                 log_dir: str | Path | None = None) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.count = count
        self.producer_address = producer_address
        self.collector_address = collector_address
        self.keys_dir = keys_dir
        self.extra_args = tuple(extra_args)
        self.name_prefix = name_prefix
        self.log_dir = Path(log_dir) if log_dir is not None else \
            Path(tempfile.mkdtemp(prefix="edgeapp-workers-"))
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start every worker that is not running."""
        for index in range(self.count):
            self.restart(index)

    def restart(self, index: int) -> int:
        """(Re)start worker ``index`` unless it runs; return its pid."""
        with self._lock:
            proc = self._procs.get(index)
            if proc is not None and proc.poll() is None:
                return proc.pid
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_path(index), "ab") as log:
                self._procs[index] = proc = subprocess.Popen(
                    self._command(index), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env=_child_env(), start_new_session=True)
            logger.info("local worker %d started (pid %d)", index, proc.pid)
            return proc.pid

    def poll(self) -> list[WorkerExited]:
        """Workers that ended since the last call (each reported once, then forgotten)."""
        ended = []
        with self._lock:
            for index, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[index]
                ended.append(WorkerExited(index, proc.pid, code,
                                          _tail(self.log_path(index))))
        return ended

    def log_path(self, index: int) -> Path:
        """Where worker ``index`` writes its log."""
        return self.log_dir / f"{self.name_prefix}-{index}.log"

    def pids(self) -> dict[int, int]:
        """Index → pid of the workers running now."""
        with self._lock:
            return {i: p.pid for i, p in self._procs.items() if p.poll() is None}

    def alive(self) -> int:
        """How many workers run now."""
        return len(self.pids())

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker, wait up to ``timeout`` s in all, then SIGKILL the rest."""
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for proc in procs:
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("local worker pid %d ignored SIGTERM: killed", proc.pid)
                _signal(proc, signal.SIGKILL)
                proc.wait(5.0)

    def _command(self, index: int) -> list[str]:
        cmd = [sys.executable, "-m", "edgeapp.commands.worker_cmd",
               "--connect", self.producer_address, "--child",
               "--name", f"{self.name_prefix}-{index}", "--nice", str(LOCAL_WORKER_NICE)]
        if self.collector_address:
            cmd += ["--collector", self.collector_address]
        if self.keys_dir is not None:
            cmd += ["--keys", str(self.keys_dir)]
        return cmd + list(self.extra_args)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sizing_args(count: int, cores: int | None = None) -> list[str]:
    """Worker flags that share this machine's cores among ``count`` local workers.

    Measured (``edgeapp bench pipeline``, 2 cores): one single-threaded, unpinned worker per
    core beat one worker with the THROUGHPUT hint over all cores, and several workers that
    each pin their threads all pin to the same first cores (ratio 0.70 against 1.0).
    """
    cores = cores or usable_cores()
    threads = max(1, cores // max(1, count))
    return ["--inference-threads", str(threads), "--inference-streams", str(threads),
            "--cpu-pinning", "on" if count == 1 else "off"]


def _child_env() -> dict[str, str]:
    """The parent's environment, with this package importable from a source checkout too,
    and this process's pid: a worker leaves when the engine is gone (even after kill -9)."""
    root = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""),
            ENGINE_PID_ENV: str(os.getpid())}


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _tail(path: Path, limit: int = 2000) -> str:
    """The end of a worker's log."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
