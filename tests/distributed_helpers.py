"""Helpers for the distributed tests: a running pipeline that is always stopped, waiting."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeapp.engine.distributed.collector import Collector, DetectionResult
from edgeapp.engine.distributed.processor import NoopProcessor, noop_factory
from edgeapp.engine.distributed.producer import Producer
from edgeapp.engine.distributed.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = np.zeros((24, 32, 3), dtype=np.uint8)
OUR_THREADS = ("producer", "collector", "worker-")


def wait_until(condition: Callable[[], bool], timeout: float, message: str = "") -> None:
    """Poll ``condition`` every 20 ms; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message}")
        time.sleep(0.02)


def our_threads() -> list[str]:
    """Names of transport threads still alive (all are daemons, so conftest cannot see them)."""
    return [t.name for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(OUR_THREADS)]


@dataclass
class Received:
    """What the Collector delivered, per stream, in delivery order (thread-safe appends)."""

    by_stream: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    results: list[DetectionResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, result: DetectionResult) -> None:
        with self.lock:
            self.by_stream[result.stream_key].append(result.seq)
            self.results.append(result)

    def count(self) -> int:
        with self.lock:
            return len(self.results)


@dataclass
class Pipeline:
    """A started Producer + Collector (+ workers) that the fixture stops."""

    producer: Producer
    collector: Collector
    received: Received
    workers: list[Worker] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def add_worker(self, factory: Any = None, **kwargs: Any) -> Worker:
        kwargs.setdefault("request_timeout_s", 1.0)
        worker = Worker(self.producer.address, processor_factory=factory or noop_factory(),
                        **kwargs)
        worker.start()
        self.workers.append(worker)
        return worker

    def spawn_worker(self, *args: str, cli: bool = False) -> subprocess.Popen:
        """A real worker process: ``python -m edgeapp.engine.distributed.worker`` or the CLI."""
        module = ["-m", "edgeapp", "--worker"] if cli else \
            ["-m", "edgeapp.engine.distributed.worker"]
        proc = subprocess.Popen(
            [sys.executable, *module, "--connect", self.producer.address, "--processor", "noop",
             "--request-timeout", "1", *args],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def submit_all(self, streams: list[str], frames: range, pause_s: float = 0.0) -> None:
        for seq in frames:
            for key in streams:
                assert self.producer.submit(key, seq, IMAGE), "the Producer refused a frame"
            if pause_s:
                time.sleep(pause_s)

    def restart_producer(self, **kwargs: Any) -> Producer:
        """Stop the Producer without END (it 'goes away') and start a new one on its port."""
        address = self.producer.address
        self.producer.stop(end_workers=False)
        assert self.producer.join(5)
        self.producer = Producer(address=address, **kwargs)
        self.producer.attach_collector(self.collector)
        self.producer.start()
        return self.producer


@contextlib.contextmanager
def pipeline(producer: dict[str, Any] | None = None,
             collector: dict[str, Any] | None = None) -> Iterator[Pipeline]:
    """A running Producer + Collector; everything (workers, processes) stopped on exit."""
    received = Received()
    col = Collector(**{"reorder_timeout_s": 10.0, **(collector or {})})
    col.subscribe(received)
    col.start()
    prod = Producer(**{"heartbeat_s": 0.2, "queue_size": 1000, **(producer or {})})
    prod.attach_collector(col)
    prod.start()
    pipe = Pipeline(prod, col, received)
    try:
        yield pipe
    except BaseException:
        _teardown(pipe)  # the test's own error is the one to see
        raise
    problems = _teardown(pipe)
    assert not problems, problems


def _teardown(pipe: Pipeline) -> list[str]:
    """Stop everything (never raising); return what did not stop."""
    problems = []
    for proc in pipe.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
    pipe.producer.stop()
    for worker in pipe.workers:
        worker.stop(drain=False)
    for worker in pipe.workers:
        if not worker.join(5):
            problems.append(f"worker {worker.name} did not stop")
    if not pipe.producer.join(10):
        problems.append("the Producer did not stop")
    pipe.collector.stop()
    if not pipe.collector.join(5):
        problems.append("the Collector did not stop")
    try:
        wait_until(lambda: not our_threads(), 5)
    except AssertionError:
        problems.append(f"threads left: {our_threads()}")
    return problems


class RecordingProcessor(NoopProcessor):
    """Notes, per task, the grade it was processed at and the grade it was handed out at."""

    def __init__(self, log: list[dict[str, Any]], name: str, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.log, self.name = log, name
        self.grades: list[int] = []

    def load(self, grade: int, loading_mode: int) -> None:
        super().load(grade, loading_mode)
        self.grades.append(grade)

    def set_grade(self, grade: int) -> None:
        super().set_grade(grade)
        self.grades.append(grade)

    def process_batch(self, images: list[np.ndarray], metas: list[dict]) -> list[np.ndarray]:
        for meta in metas:
            self.log.append({"worker": self.name, "seq": meta["seq"], "at": self.grade,
                             "handed_out_at": meta["grade"]})
        return super().process_batch(images, metas)
