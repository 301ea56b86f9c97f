"""The Producer's book of registered workers and the task leases each one holds.

A lease is a handed-out task with a deadline. It ends when the Collector claims it with the
task's result (``claim``: the result must name the task, stream and sequence as handed out,
from the worker holding it), or goes back to the queue when its deadline passes or its worker
stops showing signs of life. Any request is a sign of life. A worker that promised heartbeats
(edgeapp's) is dropped after ``liveness`` silent heartbeat intervals (zguide Paranoid Pirate);
one that sends none (the seed's and the thesis' code, see ``dialects.py``) keeps its record
while it holds leases, and each lease runs out on its own deadline. Everything here is
bounded: at most one record per connected worker, and leases only for tasks out right now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeapp.engine.api import WorkerJoined, WorkerLeft
from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.dialects import Dialect
from edgeapp.engine.distributed.task_queue import Task

WorkerEvent = WorkerJoined | WorkerLeft


@dataclass
class Lease:
    """One task out at one worker, until ``deadline`` (monotonic seconds).

    The holder's id, dialect and CURVE key are copied here: a worker sent END keeps its
    leases until its last results are in, after its record is gone.
    """

    task: Task
    worker_id: str
    deadline: float
    dialect: Dialect = Dialect.EDGEAPP
    user_id: str = ""


@dataclass
class WorkerRecord:
    """What the Producer knows about one connected worker."""

    worker_id: str
    identity: bytes
    name: str
    host: str
    pid: int
    grade: int
    registered_at: float
    last_seen: float
    dialect: Dialect = Dialect.EDGEAPP
    user_id: str = ""  # the CURVE public key it connected with (z85), "" without CURVE
    tasks_sent: int = 0
    tasks_done: int = 0
    reported: dict[str, Any] = field(default_factory=dict)
    leased: set[int] = field(default_factory=set)

    def snapshot(self, now: float) -> dict[str, Any]:
        """Plain-data view for ``Producer.status()``."""
        return {
            "id": self.worker_id, "name": self.name, "host": self.host, "pid": self.pid,
            "grade": self.grade, "dialect": self.dialect.value, "tasks_sent": self.tasks_sent,
            "tasks_done": self.tasks_done,
            "processed": self.reported.get("processed"), "busy_s": self.reported.get("busy_s"),
            "leased": len(self.leased), "last_seen_s": round(now - self.last_seen, 3),
            "uptime_s": round(now - self.registered_at, 3),
        }


class WorkerBook:
    """Registered workers by ROUTER identity, and the lease table; thread-safe."""

    def __init__(self, lease_s: float, silent_after_s: float) -> None:
        self.lease_s = lease_s
        self.silent_after_s = silent_after_s
        self._lock = threading.Lock()
        self._by_identity: dict[bytes, WorkerRecord] = {}
        self._leases: dict[int, Lease] = {}
        self._next_id = 0

    # --- membership -------------------------------------------------------------------------

    def register(self, identity: bytes, name: str, host: str, pid: int, grade: int,
                 now: float, dialect: Dialect = Dialect.EDGEAPP, user_id: str = "",
                 ) -> tuple[WorkerRecord, list[WorkerRecord], list[Task]]:
        """Add a worker; an older record with the same identity or name is replaced.

        Returns the new record, the replaced records and their leased tasks (to requeue).
        """
        with self._lock:
            old = [r for r in self._by_identity.values()
                   if r.identity == identity or (name and r.name == name)]
            tasks = [t for r in old for t in self._drop_record(r)]
            self._next_id += 1
            record = WorkerRecord(
                worker_id=f"w{self._next_id}", identity=identity, name=name or f"w{self._next_id}",
                host=host, pid=pid, grade=grade, registered_at=now, last_seen=now,
                dialect=dialect, user_id=user_id)
            self._by_identity[identity] = record
            return record, old, tasks

    def get(self, identity: bytes) -> WorkerRecord | None:
        """The record of a registered identity."""
        with self._lock:
            return self._by_identity.get(identity)

    def touch(self, record: WorkerRecord, now: float, reported: dict[str, Any] | None) -> None:
        """The worker showed a sign of life (a request, or we just sent it a reply)."""
        with self._lock:
            record.last_seen = now
            if reported:
                record.reported = reported

    def remove(self, identity: bytes, keep_leases: bool = False,
               ) -> tuple[WorkerRecord | None, list[Task]]:
        """Forget a worker; return its record and leased tasks (none if ``keep_leases``: a
        worker sent END still delivers what it holds, and its leases still expire)."""
        with self._lock:
            record = self._by_identity.get(identity)
            if record is None:
                return None, []
            if keep_leases:
                self._by_identity.pop(identity, None)
                return record, []
            return record, self._drop_record(record)

    def revoke(self, allowed: Callable[[str], bool]) -> list[tuple[WorkerRecord, list[Task]]]:
        """Forget every worker whose CURVE key ``allowed`` no longer admits; with its tasks."""
        with self._lock:
            gone = [r for r in self._by_identity.values() if r.user_id and not allowed(r.user_id)]
            return [(r, self._drop_record(r)) for r in gone]

    def records(self) -> list[WorkerRecord]:
        """All registered workers."""
        with self._lock:
            return list(self._by_identity.values())

    # --- leases -----------------------------------------------------------------------------

    def lease(self, record: WorkerRecord, tasks: list[Task], now: float) -> None:
        """Hand ``tasks`` to ``record`` until ``now + lease_s``."""
        with self._lock:
            for task in tasks:
                task.attempts += 1
                self._leases[task.id] = Lease(task, record.worker_id, now + self.lease_s,
                                              record.dialect, record.user_id)
                record.leased.add(task.id)
            record.tasks_sent += len(tasks)

    def claim(self, task_id: int, stream_key: str | int | None, seq: int | None,
              worker: str | None, user_id: str) -> tuple[Lease | None, str]:
        """End the lease that a result answers, or say why the result answers none.

        A result counts only for a task out right now, for the stream and sequence it was
        handed out with, from the worker holding it: named in the result (edgeapp) and, with
        CURVE, connected with the same key. ``stream_key``, ``seq`` and ``worker`` are None
        when the result does not carry them (the thesis code sends no ``seq`` and no worker
        name; the lease tells both). A refused result leaves the lease as it was.
        """
        with self._lock:
            lease = self._leases.get(task_id)
            if lease is None:
                return None, p.REJECT_NOT_LEASED
            if stream_key is not None and stream_key != lease.task.stream_key:
                return None, p.REJECT_WRONG_STREAM
            if seq is not None and seq != lease.task.seq:
                return None, p.REJECT_WRONG_SEQ
            named = worker is not None or lease.dialect.names_itself
            if (named and worker != lease.worker_id) or (lease.user_id and
                                                          user_id != lease.user_id):
                return None, p.REJECT_WRONG_WORKER
            del self._leases[task_id]
            for record in self._by_identity.values():
                if record.worker_id == lease.worker_id:
                    record.leased.discard(task_id)
                    record.tasks_done += 1
                    break
            return lease, ""

    def expire(self, now: float) -> tuple[list[WorkerRecord], list[Task]]:
        """Drop silent workers and overdue leases; return the dropped workers and lost tasks.

        Silent: no request for ``silent_after_s`` from a worker that heartbeats; for one that
        does not, no request for ``lease_s + silent_after_s`` while it holds no lease.
        """
        quiet_after = self.lease_s + self.silent_after_s
        with self._lock:
            silent = [r for r in self._by_identity.values()
                      if now - r.last_seen > self.silent_after_s and (
                          r.dialect.heartbeats
                          or (not r.leased and now - r.last_seen > quiet_after))]
            lost = [t for r in silent for t in self._drop_record(r)]
            by_worker = {r.worker_id: r for r in self._by_identity.values()}
            for task_id in [i for i, lease in self._leases.items() if lease.deadline <= now]:
                lease = self._leases.pop(task_id)
                record = by_worker.get(lease.worker_id)
                if record is not None:
                    record.leased.discard(task_id)
                lost.append(lease.task)
            return silent, lost

    def all_leased(self) -> list[Task]:
        """Every task out right now (oldest first)."""
        with self._lock:
            return sorted((lease.task for lease in self._leases.values()), key=lambda t: t.order)

    def lease_count(self) -> int:
        """How many tasks are out."""
        return len(self._leases)

    def snapshot(self) -> list[dict[str, Any]]:
        """Plain-data view of every worker."""
        now = time.monotonic()
        with self._lock:
            return [r.snapshot(now) for r in self._by_identity.values()]

    def _drop_record(self, record: WorkerRecord) -> list[Task]:
        """Remove ``record`` and its leases (lock held); return its tasks oldest first."""
        self._by_identity.pop(record.identity, None)
        tasks = [self._leases.pop(i).task for i in record.leased if i in self._leases]
        return sorted(tasks, key=lambda t: t.order)
