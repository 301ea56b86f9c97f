"""The results store: every ``OrderResult`` in one SQLite file, durable once ``add`` returns,
and the autoscaler's decisions beside them (so the window shows them after a restart)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.errors import InputError, StoreError

SCHEMA_VERSION = 2  # 2: the scaling_decisions table
RESULTS_FILENAME = "results.sqlite3"
_BUSY_TIMEOUT_S = 10.0  # another process (the CLI, a second engine) may hold the write lock

# Queryable fields get columns; the whole result is kept as JSON beside them, so a new
# OrderResult field needs no migration.
_SCHEMA = (
    """CREATE TABLE results (
        result_id     TEXT PRIMARY KEY,
        created_at    REAL NOT NULL,
        order_id      TEXT NOT NULL,
        station_id    TEXT NOT NULL,
        status        TEXT NOT NULL,
        accuracy      REAL NOT NULL,
        num_frames    INTEGER NOT NULL,
        latency_s     REAL,
        reason        TEXT,
        truth_verdict TEXT,
        truth_correct INTEGER,
        json          TEXT NOT NULL
    )""",
    "CREATE INDEX results_created ON results (created_at)",
    "CREATE INDEX results_order ON results (order_id, created_at)",
    "CREATE INDEX results_station ON results (station_id, created_at)",
)
# Added in version 2; a version-1 file gets it when first opened.
_SCALING_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS scaling_decisions (
        ts   REAL NOT NULL,
        json TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS scaling_ts ON scaling_decisions (ts)",
)
_INSERT = (
    "INSERT INTO results (result_id, created_at, order_id, station_id, status, accuracy,"
    " num_frames, latency_s, reason, truth_verdict, truth_correct, json)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# CSV: scalar fields as they are, nested ones as JSON text (so the export parses back exactly).
CSV_FIELDS = (
    "result_id", "created_at", "order_id", "station_id", "status", "accuracy", "num_frames",
    "latency_s", "reason", "truth_verdict", "truth_correct", "expected_items", "detected_items",
    "missing", "extra", "quantity_mismatch", "timings", "evidence",
)
_CSV_NESTED = frozenset(
    {"expected_items", "detected_items", "missing", "extra", "quantity_mismatch", "timings",
     "evidence"}
)


def default_results_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the results database lives inside the user data folder."""
    return Path(data_dir) / RESULTS_FILENAME


class ResultsStore:
    """Thread-safe SQLite (WAL) store of order results.

    ``add`` commits with ``synchronous=FULL`` before it returns, so a result that was
    reported survives a kill -9 of the process (and a power cut, as far as the disk keeps
    its fsync promise). One connection is shared by all threads behind a lock: SQLite
    serialises writers anyway, and other processes read alongside thanks to WAL.
    Every SQLite failure becomes a ``StoreError`` that names the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if not self.path.exists():
            if not create:
                raise StoreError(f"no results database at {self.path}")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"results database {self.path}: cannot create its folder: {exc}"
                ) from None
        elif self.path.is_dir():
            raise StoreError(f"results database {self.path} is a folder, not a file")
        with self._guard("open"):
            self._conn = sqlite3.connect(
                str(self.path), timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
        try:
            with self._guard("open"):
                self._setup(self._conn)
        except StoreError:
            self._conn.close()
            self._conn = None
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; further calls raise ``StoreError``. Safe to call twice."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def add(self, result: OrderResult) -> None:
        """Store one result; returns only after it is committed to disk."""
        data = result.to_dict()
        try:
            text = json.dumps(data, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InputError(f"result {result.result_id} is not JSON-safe: {exc}") from None
        truth = None if result.truth_correct is None else int(result.truth_correct)
        row = (
            result.result_id, result.created_at, result.order_id, result.station_id,
            result.status.value, result.accuracy, result.num_frames, result.latency_s,
            result.reason, result.truth_verdict, truth, text,
        )
        with self._lock, self._guard(f"storing result {result.result_id}"):
            # Autocommit: the single INSERT is its own transaction, committed (WAL fsynced,
            # synchronous=FULL) before execute() returns.
            self._connection().execute(_INSERT, row)

    def add_scaling(self, decision: dict[str, Any]) -> None:
        """Store one scaling decision (plain data with a wall-clock ``ts``); durable on
        return, like a result."""
        try:
            text = json.dumps(decision, allow_nan=False, separators=(",", ":"))
            ts = float(decision["ts"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"scaling decision is not storable: {exc}") from None
        with self._lock, self._guard("storing a scaling decision"):
            self._connection().execute("INSERT INTO scaling_decisions (ts, json) VALUES (?, ?)",
                                       (ts, text))

    def scaling_history(self, limit: int | None = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` scaling decisions, oldest first."""
        with self._lock, self._guard("reading scaling decisions"):
            rows = self._connection().execute(
                "SELECT json FROM scaling_decisions ORDER BY ts DESC, rowid DESC LIMIT ?",
                (-1 if limit is None else limit,)).fetchall()
        return [json.loads(text) for (text,) in reversed(rows)]

    # -- reading ---------------------------------------------------------------------------

    def get(self, result_id: str) -> OrderResult | None:
        """One result by its id, or None."""
        rows = self._select("WHERE result_id = ?", (result_id,), limit=1)
        return rows[0] if rows else None

    def recent(self, limit: int | None = 50) -> list[OrderResult]:
        """The newest results first; ``limit=None`` for all."""
        return self.query(limit=limit)

    def by_order(self, order_id: str, limit: int | None = None) -> list[OrderResult]:
        """Every result of one order id (an order may be seen more than once), newest first."""
        return self.query(order_id=order_id, limit=limit)

    def by_station(self, station_id: str, limit: int | None = 50) -> list[OrderResult]:
        """The newest results of one station first."""
        return self.query(station_id=station_id, limit=limit)

    def query(
        self,
        *,
        order_id: str | None = None,
        station_id: str | None = None,
        status: OrderStatus | str | None = None,
        limit: int | None = 50,
    ) -> list[OrderResult]:
        """Results matching every filter given, newest first."""
        where, params = [], []
        for column, value in (("order_id", order_id), ("station_id", station_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if status is not None:
            where.append("status = ?")
            params.append(OrderStatus(status).value)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._select(clause, tuple(params), limit=limit)

    def count(self) -> int:
        """How many results are stored."""
        with self._lock, self._guard("counting results"):
            return int(self._connection().execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def summary(self) -> dict[str, Any]:
        """Totals for reports and benchmarks.

        ``by_status`` counts every status (zeros included); ``mean_accuracy`` and
        ``mean_latency_s`` are None when there is nothing to average. ``truth`` covers the
        verdicts whose right verdict is known (a failed order got none: README, "Verdict
        accuracy"): how many, how many were right, that share as ``verdict_accuracy``, and
        ``confusion[truth_verdict][status]`` (failed orders included).
        """
        with self._lock, self._guard("summarising results"):
            conn = self._connection()
            by_status = {s.value: 0 for s in OrderStatus}
            for status, n in conn.execute("SELECT status, COUNT(*) FROM results GROUP BY 1"):
                by_status[status] = n
            total, mean_acc, mean_lat = conn.execute(
                "SELECT COUNT(*), AVG(accuracy), AVG(latency_s) FROM results"
            ).fetchone()
            stations = dict(
                conn.execute("SELECT station_id, COUNT(*) FROM results GROUP BY 1 ORDER BY 1")
            )
            confusion: dict[str, dict[str, int]] = {}
            known = correct = 0
            for truth, status, right, n in conn.execute(
                "SELECT truth_verdict, status, truth_correct, COUNT(*) FROM results"
                " WHERE truth_verdict IS NOT NULL GROUP BY 1, 2, 3"
            ):
                cell = confusion.setdefault(truth, {})
                cell[status] = cell.get(status, 0) + n
                if right is not None:  # a failed order got no verdict: neither right nor wrong
                    known += n
                    correct += n if right else 0
        return {
            "total": int(total),
            "by_status": by_status,
            "by_station": stations,
            "mean_accuracy": mean_acc,
            "mean_latency_s": mean_lat,
            "truth": {
                "known": known,
                "correct": correct,
                "verdict_accuracy": correct / known if known else None,
                "confusion": confusion,
            },
        }

    # -- export ----------------------------------------------------------------------------

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write every result, oldest first, as CSV (nested fields as JSON); returns the count."""
        return write_csv(self._iter_all(), path)

    def export_json(self, path: str | os.PathLike[str]) -> int:
        """Write every result, oldest first, as a JSON array of dicts; returns the count."""
        def write(f: Any) -> int:
            f.write("[")
            n = 0
            for result in self._iter_all():
                f.write(",\n" if n else "\n")
                f.write(json.dumps(result.to_dict(), allow_nan=False))
                n += 1
            f.write("\n]\n")
            return n

        return _write_atomically(Path(path), write)

    # -- internals -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"results database {self.path} is closed")
        return self._conn

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn SQLite and decoding failures into one clear ``StoreError`` naming the file."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"results database {self.path}: {action}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            hint = ""
            if type(exc) is sqlite3.DatabaseError:  # "not a database", "disk image is malformed"
                hint = (" (the file is corrupt or not an edgeapp results database;"
                        " move it aside and edgeapp starts a new one)")
            raise StoreError(f"results database {self.path}: {action} failed: {exc}{hint}") \
                from None
        except sqlite3.Error as exc:
            raise StoreError(f"results database {self.path}: {action} failed: {exc}") from None
        except (InputError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"results database {self.path}: {action}: a stored result is unreadable: {exc}"
            ) from None

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"results database {self.path}: WAL journal not available (mode {mode!r});"
                " keep the data folder on a local disk"
            )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "schema_version" not in tables:
                if tables:
                    raise StoreError(
                        f"{self.path} is an SQLite file of something else, not edgeapp results"
                    )
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                for statement in (*_SCHEMA, *_SCALING_SCHEMA):
                    conn.execute(statement)
            else:
                row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                version = row[0] if row else None
                if version is None or version > SCHEMA_VERSION:
                    raise StoreError(
                        f"results database {self.path} has schema version {version}; this"
                        f" edgeapp reads version {SCHEMA_VERSION} (made by a newer edgeapp?)"
                    )
                if version < SCHEMA_VERSION:
                    for statement in _SCALING_SCHEMA:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _select(
        self, clause: str, params: tuple[Any, ...], *, limit: int | None
    ) -> list[OrderResult]:
        sql = f"SELECT json FROM results {clause} ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._lock, self._guard("reading results"):
            rows = self._connection().execute(sql, (*params, -1 if limit is None else limit))
            return [OrderResult.from_dict(json.loads(text)) for (text,) in rows.fetchall()]

    def _iter_all(self) -> Iterator[OrderResult]:
        with self._lock, self._guard("reading results"):
            cursor = self._connection().execute(
                "SELECT json FROM results ORDER BY created_at, rowid"
            )
            while batch := cursor.fetchmany(500):
                for (text,) in batch:
                    yield OrderResult.from_dict(json.loads(text))


def write_csv(results: Iterable[OrderResult], path: str | os.PathLike[str]) -> int:
    """Write ``results`` as CSV, nested fields as JSON text (so the file parses back exactly);
    returns the count. The store's export and the window's export write this one format."""
    def write(f: Any) -> int:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        n = 0
        for result in results:
            row = result.to_dict()
            for key in _CSV_NESTED:
                row[key] = json.dumps(row[key], separators=(",", ":"))
            writer.writerow({k: "" if row[k] is None else row[k] for k in CSV_FIELDS})
            n += 1
        return n

    return _write_atomically(Path(path), write, newline="")


def _write_atomically(path: Path, write: Any, newline: str | None = None) -> int:
    """Write to ``path.tmp`` then rename, so a failed export never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            n = write(f)
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write export file {path}: {exc}") from None
        raise
    return int(n)
