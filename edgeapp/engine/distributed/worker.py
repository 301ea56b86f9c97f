"""The worker runtime: request work, process it, push results — three threads, bounded buffers.

- The *requester* owns the REQ socket (:class:`ProducerLink`). It registers, then keeps up to
  ``prefetch`` received batches waiting for the processor (it asks for the next one while the
  current one is processed), sends HEARTBEAT while it has enough, reconnects and registers
  again when the Producer goes away, and stops on END.
- The *processor thread* is the only one that touches the :class:`Processor`: it builds it from
  the registration (``processor_factory``), loads the grade, applies CHANGE in stream order —
  a CHANGE is queued behind the tasks that came before it and ahead of those after it.
- The *sender* owns the PUSH socket to the Collector and sends each batch's detections as
  ``[info, (meta, data)...]`` with ``copy=False``.

Needs only numpy, pyzmq and msgpack here; the processor brings OpenVINO. ``Worker`` is the
in-process form (``start/stop/join``); ``edgeapp --worker`` wraps it with signals.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import socket as pysocket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.endpoint import client_socket
from edgeapp.engine.distributed.keys import load_client_keys
from edgeapp.engine.distributed.processor import ProcessorFactory, load_factory
from edgeapp.engine.distributed.worker_link import ProducerLink
from edgeapp.errors import (
    ConfigError,
    EdgeAppError,
    InputError,
    ModelError,
    ProtocolError,
    SecurityError,
)

logger = logging.getLogger(__name__)


class WorkerExit(enum.IntEnum):
    """Exit codes of ``edgeapp --worker``."""

    OK = 0
    FAILED = 1
    CONFIG = 2  # bad options, or a --keys folder or key file that is not what it must be
    MODEL = 5  # the processor could not be built or loaded, or keeps failing
    PROTOCOL = 10
    AUTH = 11  # the handshake failed (no keys, wrong keys, key refused) or the key was revoked
    CANNOT_CONNECT = 12  # no Producer answered within --connect-timeout
    TERMINATED = 143  # second SIGTERM: left at once


@dataclass(frozen=True)
class _Load:
    confirmation: dict[str, Any]


@dataclass(frozen=True)
class _Grade:
    grade: int


@dataclass(frozen=True)
class _Batch:
    items: list[tuple[dict, np.ndarray]]
    received: float


_END = object()  # no more input for the next stage

#: While no Producer answers, the worker says so this often (seconds).
NOTICE_EVERY_S = 10.0


class Worker:
    """One inference worker connected to a Producer; ``start()``, ``stop()``, ``join()``."""

    def __init__(
        self, connect: str, *, processor_factory: ProcessorFactory | str = "auto",
        collector: str | None = None, keys_dir: str | Path | None = None,
        name: str | None = None, prefetch: int = 2, request_timeout_s: float = 5.0,
        connect_timeout_s: float | None = None, max_batch: int | None = None,
        max_consecutive_failures: int = 3, context: zmq.Context | None = None,
        notice: Callable[[str], None] | None = None, notice_every_s: float = NOTICE_EVERY_S,
    ) -> None:
        self.connect = connect
        self.factory = load_factory(processor_factory) if isinstance(processor_factory, str) \
            else processor_factory
        self.collector_override = collector
        self.client_keys = load_client_keys(keys_dir) if keys_dir else None
        self.name = name or f"{pysocket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.prefetch = max(1, prefetch)
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_batch = max_batch
        self.max_consecutive_failures = max_consecutive_failures
        #: Where lines for the operator go (waiting for a Producer, reconnecting).
        self.notice = notice or logger.warning
        self.notice_every_s = notice_every_s
        self.exit_code: WorkerExit | None = None
        self.error: str | None = None
        self.worker_id: str | None = None
        self.grade: int | None = None  # the grade the processor runs at
        self.processed = 0
        self.busy_s = 0.0
        self.counts: dict[str, int] = {"bad_replies": 0, "failed_batches": 0}
        self._ctx = context or zmq.Context()
        self._own_ctx = context is None
        self._in: queue.Queue[Any] = queue.Queue()
        self._out: queue.Queue[Any] = queue.Queue(maxsize=max(2, self.prefetch + 1))
        self._waiting = 0  # batches in ``_in``; guarded by ``_cv``
        self._cv = threading.Condition()
        self._ready = threading.Event()
        self._stop_requesting = threading.Event()
        self._hard = threading.Event()
        self._collector: str | None = None
        self._heartbeat_s = 1.0
        self._link: ProducerLink | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the three threads; the requester connects and registers."""
        for target, name in ((self._request_loop, "requester"),
                             (self._process_loop, "processor"), (self._send_loop, "sender")):
            thread = threading.Thread(target=self._guard(target), name=f"worker-{name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, drain: bool = True) -> None:
        """Ask for no more work; finish (``drain``) or drop what is here, then end."""
        self._stop_requesting.set()
        if not drain:
            self._hard.set()
        with self._cv:
            self._cv.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for all threads; True when they ended (the context is then closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        done = not any(t.is_alive() for t in self._threads)
        if done and self._own_ctx and not self._ctx.closed:
            self._ctx.term()
        if done and self.exit_code is None:
            self.exit_code = WorkerExit.OK
        return done

    def status(self) -> dict[str, Any]:
        """Plain-data snapshot for logs and tests."""
        link = self._link
        return {"name": self.name, "worker_id": self.worker_id, "grade": self.grade,
                "processed": self.processed, "busy_s": round(self.busy_s, 3),
                "reconnects": link.reconnects if link else 0, **self.counts}

    def _fail(self, code: WorkerExit, message: str) -> None:
        if self.exit_code is None:
            self.exit_code, self.error = code, message
            logger.info("worker stops: %s", message)  # the CLI prints it, once
        self.stop(drain=False)

    def _guard(self, target: Any) -> Any:
        def run() -> None:
            try:
                target()
            except EdgeAppError as exc:
                self._fail(_exit_for(exc), str(exc))
            except Exception as exc:  # noqa: BLE001 - becomes the exit code, never silent
                logger.exception("worker thread failed")
                self._fail(WorkerExit.FAILED, f"{type(exc).__name__}: {exc}")
        return run

    # --- requester ----------------------------------------------------------------------------

    def _request_loop(self) -> None:
        link = self._link = ProducerLink(self._ctx, self.connect, self.client_keys,
                                         self.request_timeout_s)
        started, registered_once, registered, last_sent = time.monotonic(), False, False, 0.0
        waiting_since: float | None = None  # since when no Producer answered
        told = 0.0
        try:
            while not self._stop_requesting.is_set():
                if not registered:
                    msg: dict[str, Any] = {"type": p.REGISTER, "worker": self.name,
                                           "host": pysocket.gethostname(), "pid": os.getpid()}
                elif self._ready.is_set() and self._waiting < self.prefetch:
                    msg = {"type": p.GET_WORK, "max_tasks": self.max_batch or 64}
                elif time.monotonic() - last_sent >= self._heartbeat_s:
                    msg = {"type": p.HEARTBEAT}
                else:
                    with self._cv:
                        self._cv.wait(max(0.0, last_sent + self._heartbeat_s - time.monotonic()))
                    continue
                msg["stats"] = {"processed": self.processed, "busy_s": round(self.busy_s, 3)}
                last_sent = time.monotonic()
                reply = link.request(msg, self._stop_requesting)
                now = time.monotonic()
                if reply is None:
                    if link.handshake_error is not None:
                        raise SecurityError(link.handshake_error)
                    if registered:
                        self.notice(f"lost the Producer at {self.connect}; reconnecting")
                    registered = False
                    if waiting_since is None:
                        waiting_since = told = now
                    if (not registered_once and self.connect_timeout_s is not None
                            and now - started > self.connect_timeout_s):
                        self._fail(WorkerExit.CANNOT_CONNECT,
                                   f"no Producer answered at {self.connect} within "
                                   f"{self.connect_timeout_s:g} s")
                    elif now - told >= self.notice_every_s:
                        told = now
                        self.notice(f"no Producer has answered at {self.connect} for "
                                    f"{now - waiting_since:.0f} s; still trying (is the engine "
                                    "running, and is this its distributed.producer_bind as "
                                    "seen from here?)")
                    self._stop_requesting.wait(0.1)  # the Producer is away: no busy retry
                    continue
                registered = self._on_reply(reply, registered)
                if registered and waiting_since is not None:
                    if now - waiting_since >= self.notice_every_s:
                        self.notice(f"the Producer at {self.connect} answers again")
                    waiting_since = None
                registered_once = registered_once or registered
        finally:
            link.close()
            self._in.put(_END)

    def _on_reply(self, parts: list[zmq.Frame], registered: bool) -> bool:
        """Act on one reply; return whether we are (still) registered."""
        try:
            info = p.decode_typed(parts[0], p.REPLY_TYPES)
            kind = info["type"]
            if kind == p.INFERENCE:
                items = p.decode_items(parts, p.Limits(max_header_bytes=1 << 20))
                with self._cv:
                    self._waiting += 1
                self._in.put(_Batch(items, time.monotonic()))
            elif kind == p.CHANGE:
                self._in.put(_Grade(p.check_grade(p.field(info, "CHANGE_WORK_LOAD", int,
                                                          required=True))))
            elif kind == p.REGISTRATION_CONFIRMATION:
                self._registered(info)
                return True
            elif kind == p.END:
                logger.info("the Producer sent END")
                self._stop_requesting.set()
            elif kind == p.ERROR and info.get("reason") == p.REJECT_NOT_REGISTERED:
                return False
            elif kind == p.ERROR and info.get("reason") == p.REJECT_REVOKED:
                raise SecurityError(f"the Producer at {self.connect} revoked this worker's key "
                                    "('edgeapp keys revoke'); ask for a new one")
            elif kind == p.ERROR:
                logger.warning("the Producer answered ERROR %s", info.get("reason"))
                self._stop_requesting.wait(0.5)  # do not hammer a Producer that refuses us
        except (ProtocolError, InputError, ValueError) as exc:
            self.counts["bad_replies"] += 1
            logger.warning("bad reply from the Producer: %s", exc)
            self._stop_requesting.wait(0.5)
        return registered

    def _registered(self, info: dict[str, Any]) -> None:
        self.worker_id = p.field(info, "worker_id", str, None)
        self._heartbeat_s = max(0.01, float(p.field(info, "heartbeat_s", (int, float), 1.0)))
        advertised = p.field(info, "collector", str, None)
        self._collector = self.collector_override or (
            resolve_collector(advertised, self.connect) if advertised else None)
        if self._collector is None:
            raise ConfigError("collector: the Producer named none; pass --collector")
        grade = p.check_grade(p.field(info, "work_load", int, 1))
        self._in.put(_Grade(grade) if self._ready.is_set() or self.grade is not None
                     else _Load(dict(info)))
        logger.info("registered as %s at grade %d", self.worker_id, grade)

    # --- processor ----------------------------------------------------------------------------

    def _process_loop(self) -> None:
        processor = None
        failures = 0
        try:
            while not self._hard.is_set():
                try:
                    item = self._in.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, _Load) and processor is None:
                    processor = self.factory(item.confirmation)
                    grade = p.check_grade(item.confirmation.get("work_load", 1))
                    processor.load(grade, int(item.confirmation.get("loading_mode", 1)))
                    self.grade = grade
                    self._ready.set()
                    with self._cv:
                        self._cv.notify_all()
                elif isinstance(item, (_Load, _Grade)) and processor is not None:
                    grade = item.grade if isinstance(item, _Grade) \
                        else p.check_grade(item.confirmation.get("work_load", 1))
                    if grade != self.grade:
                        processor.set_grade(grade)
                        self.grade = grade
                elif isinstance(item, _Batch):
                    with self._cv:
                        self._waiting -= 1
                        self._cv.notify_all()
                    if processor is None:
                        continue
                    failures = 0 if self._run_batch(processor, item) else failures + 1
                    if failures >= self.max_consecutive_failures:
                        raise ModelError(f"the processor failed {failures} batches in a row")
        finally:
            if processor is not None:
                processor.close()
            self._put_out(_END)

    def _run_batch(self, processor: Any, batch: _Batch) -> bool:
        metas = [meta for meta, _ in batch.items]
        start = time.monotonic()
        try:
            results = processor.process_batch([img for _, img in batch.items], metas)
            if len(results) != len(metas):
                raise ValueError(f"{len(results)} results for {len(metas)} images")
            for r in results:
                p.check_detections(np.asarray(r))
        except Exception as exc:  # noqa: BLE001 - counted; leases bring the tasks back
            self.counts["failed_batches"] += 1
            logger.warning("processing a batch failed: %s", exc)
            return False
        took = time.monotonic() - start
        self.busy_s += took
        self.processed += len(metas)
        timings = {"queue_s": round(start - batch.received, 6),
                   "process_s": round(took / len(metas), 6)}
        out = []
        for meta, det in zip(metas, results, strict=True):
            keep = {k: v for k, v in meta.items() if k not in ("dtype", "shape")}
            out.append(({**keep, "type": p.COLLECT, "grade": self.grade, "timings": timings},
                        np.ascontiguousarray(det, dtype=np.float32)))
        self._put_out(out)
        return True

    def _put_out(self, item: Any) -> None:
        while not self._hard.is_set():
            try:
                self._out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    # --- sender -------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        sock: zmq.Socket | None = None
        address = None
        try:
            while not self._hard.is_set():
                try:
                    item = self._out.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if self._collector != address or sock is None:
                    if sock is not None:
                        sock.close(linger=0)
                    address = self._collector
                    assert address is not None, "results come only after registration"
                    sock = client_socket(self._ctx, zmq.PUSH, address, self.client_keys,
                                         sndhwm=64)
                frames: list[Any] = [p.message(p.COLLECT, worker=self.worker_id or self.name)]
                for meta, det in item:
                    frames += p.array_parts(det, **meta)
                self._send(sock, frames)
        finally:
            if sock is not None:
                sock.close(linger=0 if self._hard.is_set() else 1000)

    def _send(self, sock: zmq.Socket, frames: list[Any]) -> None:
        while not self._hard.is_set():
            try:
                sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                return
            except zmq.Again:  # the Collector is slow or away: wait, but stay stoppable
                sock.poll(100, zmq.POLLOUT)


def resolve_collector(advertised: str, producer: str) -> str:
    """The Collector address as seen from here: a wildcard host becomes the Producer's host."""
    scheme, _, rest = advertised.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host in ("*", "0.0.0.0", "[::]", "::"):
        producer_host = producer.partition("://")[2].rpartition(":")[0]
        return f"tcp://{producer_host}:{port}"
    return advertised


def _exit_for(exc: EdgeAppError) -> WorkerExit:
    """The exit code for an error that stopped the worker."""
    if isinstance(exc, SecurityError):
        return WorkerExit.AUTH
    if isinstance(exc, ConfigError):
        return WorkerExit.CONFIG
    if isinstance(exc, ModelError):
        return WorkerExit.MODEL
    if isinstance(exc, ProtocolError):
        return WorkerExit.PROTOCOL
    return WorkerExit.FAILED


if __name__ == "__main__":  # python -m edgeapp.engine.distributed.worker --connect ...
    from edgeapp.commands.worker_cmd import main

    raise SystemExit(main())
