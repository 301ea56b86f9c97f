"""Distributed detection over ZeroMQ: wire protocol, Producer, worker, Collector, CURVE keys.

Data path: ``Producer.submit(frame)`` → ROUTER → worker (REQ; processor) → PUSH → ``Collector``
(PULL; dedupe, reorder) → subscribers. Producer and Collector live in the engine process and
are linked with ``producer.attach_collector(collector)``.
"""

from __future__ import annotations

from edgeapp.engine.distributed.collector import Collector, DetectionResult
from edgeapp.engine.distributed.processor import NoopProcessor, Processor, ProcessorFactory
from edgeapp.engine.distributed.producer import Producer, ProducerState
from edgeapp.engine.distributed.settings import CollectorSettings, ProducerSettings
from edgeapp.engine.distributed.worker import Worker, WorkerExit

__all__ = [
    "Collector",
    "CollectorSettings",
    "DetectionResult",
    "NoopProcessor",
    "Processor",
    "ProcessorFactory",
    "Producer",
    "ProducerSettings",
    "ProducerState",
    "Worker",
    "WorkerExit",
]
