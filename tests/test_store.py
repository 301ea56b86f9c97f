"""Results store on real SQLite: round trip, queries, exports, threads, kill -9, corrupt files."""

from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeapp.commands import results_cmd
from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.orders.store import RESULTS_FILENAME, ResultsStore, default_results_path
from edgeapp.errors import InputError, StoreError

REPO = Path(__file__).resolve().parents[1]


def make_result(i: int = 0, **overrides) -> OrderResult:
    """A varied, valid result: statuses, stations and truth cycle with ``i``."""
    status = list(OrderStatus)[i % 4]
    fields = {
        "order_id": str(100 + i % 7),
        "station_id": f"st-{i % 3}",
        "expected_items": {"burger": 2, "cola": 1},
        "detected_items": {"burger": 2, "cola": 1} if status is OrderStatus.VALIDATED
        else {"burger": 1},
        "missing": () if status is OrderStatus.VALIDATED else ("cola",),
        "quantity_mismatch": () if status is OrderStatus.VALIDATED
        else ({"name": "burger", "expected": 2, "detected": 1},),
        "status": status,
        "accuracy": 1.0 if status is OrderStatus.VALIDATED else 0.25,
        "num_frames": 3,
        "latency_s": 0.5 + i / 100,
        "timings": {"vlm": 0.4, "select": 0.01},
        "evidence": (f"/data/frames/{i}-a.jpg",),
        "reason": "timeout" if status is OrderStatus.FAILED else None,
        "truth_verdict": "validated" if i % 2 == 0 else "mismatch",
        "truth_correct": None if status is OrderStatus.FAILED  # no verdict: neither way
        else status.value == ("validated" if i % 2 == 0 else "mismatch"),
        "created_at": 1_700_000_000.0 + i,
    }
    fields.update(overrides)
    return OrderResult(**fields)


@pytest.fixture
def store(tmp_path):
    s = ResultsStore(tmp_path / "data" / RESULTS_FILENAME)
    yield s
    s.close()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_round_trip_and_settings(store):
    r = make_result(1)
    store.add(r)
    assert store.get(r.result_id) == r
    assert store.get("nope") is None
    assert store.count() == 1
    conn = store._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2, "FULL"
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 2


def test_reopen_keeps_results(tmp_path):
    path = tmp_path / "r.sqlite3"
    with ResultsStore(path) as s:
        s.add(make_result(0))
    with ResultsStore(path, create=False) as s:
        assert s.count() == 1


def test_queries_newest_first_with_filters(store):
    results = [make_result(i) for i in range(30)]
    for r in results:
        store.add(r)
    newest = sorted(results, key=lambda r: r.created_at, reverse=True)
    assert store.recent(5) == newest[:5]
    assert len(store.recent(limit=None)) == 30
    assert store.by_order("103") == [r for r in newest if r.order_id == "103"]
    assert store.by_station("st-1", limit=3) == [r for r in newest if r.station_id == "st-1"][:3]
    both = store.query(order_id="101", station_id="st-0", limit=None)
    assert both == [r for r in newest if r.order_id == "101" and r.station_id == "st-0"]
    failed = store.query(status="failed", limit=None)
    assert failed and all(r.status is OrderStatus.FAILED for r in failed)


def test_summary_counts_and_truth(store):
    for i in range(8):
        store.add(make_result(i))
    s = store.summary()
    assert s["total"] == 8
    assert s["by_status"] == {"validated": 2, "mismatch": 2, "unreadable": 2, "failed": 2}
    assert s["by_station"] == {"st-0": 3, "st-1": 3, "st-2": 2}
    assert s["mean_accuracy"] == pytest.approx((2 * 1.0 + 6 * 0.25) / 8)
    # truth: even i -> "validated" (right when status validated: i=0,4); odd -> "mismatch"
    # (right when status mismatch: i=1,5); the failed ones (i=3,7) got no verdict and count
    # neither way, though the confusion table shows them
    assert s["truth"]["known"] == 6 and s["truth"]["correct"] == 4
    assert s["truth"]["verdict_accuracy"] == pytest.approx(4 / 6)
    assert s["truth"]["confusion"]["validated"] == {"validated": 2, "unreadable": 2}
    assert s["truth"]["confusion"]["mismatch"] == {"mismatch": 2, "failed": 2}


def test_summary_of_empty_store(store):
    s = store.summary()
    assert s["total"] == 0 and s["mean_accuracy"] is None and s["truth"]["verdict_accuracy"] is None


def test_export_json_and_csv_parse_back(store, tmp_path):
    results = [make_result(i) for i in range(10)]
    for r in reversed(results):  # insertion order must not matter: exports are oldest first
        store.add(r)
    assert store.export_json(tmp_path / "out.json") == 10
    data = json.loads((tmp_path / "out.json").read_text())
    assert [OrderResult.from_dict(d) for d in data] == results

    assert store.export_csv(tmp_path / "out.csv") == 10
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["result_id"] for row in rows] == [r.result_id for r in results]
    for row, r in zip(rows, results, strict=True):
        assert row["status"] == r.status.value and float(row["accuracy"]) == r.accuracy
        assert json.loads(row["expected_items"]) == r.expected_items
        assert json.loads(row["quantity_mismatch"]) == [m.to_dict() for m in r.quantity_mismatch]
        assert row["reason"] == (r.reason or "")
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_export_to_unwritable_place_names_the_file(store, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="afile"):
        store.export_json(tmp_path / "afile" / "out.json")


def test_concurrent_writers_threads_and_second_connection(store):
    other = ResultsStore(store.path)  # e.g. a second process's connection to the same file
    errors: list[BaseException] = []
    added: list[str] = []
    lock = threading.Lock()

    def writer(s: ResultsStore, base: int) -> None:
        try:
            for i in range(25):
                r = make_result(base + i, created_at=time.time())
                s.add(r)
                with lock:
                    added.append(r.result_id)
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(store if t < 6 else other, t * 100))
               for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    other.close()
    assert not errors, errors
    assert store.count() == 200 == len(added)
    assert {r.result_id for r in store.recent(limit=None)} == set(added)
    assert integrity(store.path) == "ok"


CHILD = """
import sys
from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.orders.store import ResultsStore
store = ResultsStore(sys.argv[1])
i = 0
while True:
    r = OrderResult(order_id=str(100 + i % 50), station_id="st-%d" % (i % 3),
                    expected_items={"burger": 2}, detected_items={"burger": 2},
                    status="validated", accuracy=1.0, evidence=["/f/%d.jpg" % i])
    store.add(r)
    print(r.result_id, flush=True)
    i += 1
"""


def test_every_reported_result_survives_kill_9(tmp_path):
    # Given a process that reports each result id once add() returned
    path = tmp_path / "results.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported: list[str] = []
    try:
        deadline = time.monotonic() + 120  # generous: a loaded CI box starts Python slowly
        while len(reported) < 100 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(line.strip())
        # When it is killed mid-loop, without any chance to clean up
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    assert len(reported) >= 100, f"child did not get going: {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    # Lines already in the pipe were also reported after a committed add(); keep whole ones.
    reported += [x for x in out.split("\n") if re.fullmatch(r"[0-9a-f]{32}", x)]

    # Then every reported id is in the reopened database, which is sound
    with ResultsStore(path, create=False) as s:
        stored = {r.result_id for r in s.recent(limit=None)}
        assert set(reported) <= stored, f"lost {len(set(reported) - stored)} reported results"
        assert len(stored) - len(reported) <= 1, "at most the one in flight is unreported"
    assert integrity(path) == "ok"


def test_corrupt_file_gives_store_error_naming_it(tmp_path):
    path = tmp_path / "results.sqlite3"
    path.write_bytes(b"definitely not an SQLite database\n" * 200)
    with pytest.raises(StoreError, match=re.escape(str(path))) as err:
        ResultsStore(path)
    assert "corrupt" in str(err.value)


def test_damaged_pages_give_store_error_naming_it(tmp_path):
    path = tmp_path / "results.sqlite3"
    with ResultsStore(path) as s:
        for i in range(300):
            s.add(make_result(i, reason="x" * 200))
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * 4096
    data[2 * 4096:] = b"\xa5" * (len(data) - 2 * 4096)  # keep page 1 (the schema), smash the rest
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=re.escape(str(path))):
        with ResultsStore(path) as s:
            s.recent(limit=None)
            s.summary()


def test_unusable_paths_give_store_error(tmp_path):
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(StoreError, match="plainfile"):
        ResultsStore(tmp_path / "plainfile" / "results.sqlite3")
    with pytest.raises(StoreError, match="folder"):
        ResultsStore(tmp_path)
    with pytest.raises(StoreError, match="no results database"):
        ResultsStore(tmp_path / "missing.sqlite3", create=False)


def test_foreign_or_newer_database_is_refused(tmp_path):
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="not edgeapp results"):
        ResultsStore(foreign)
    newer = tmp_path / "newer.sqlite3"
    ResultsStore(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        ResultsStore(newer)


def test_scaling_decisions_survive_a_reopen_and_a_version_1_file_gains_their_table(tmp_path):
    # Given a results file made by an edgeapp before the autoscaler (schema version 1)
    path = tmp_path / "r.sqlite3"
    ResultsStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE scaling_decisions")
        conn.execute("UPDATE schema_version SET version = 1")
    # When it is opened and two decisions are stored, then reopened
    with ResultsStore(path) as s:
        s.add_scaling({"ts": 2.0, "action": "scale_up", "reason": "CPU 40 % < 80 %"})
        s.add_scaling({"ts": 1.0, "action": "hold", "reason": "at max"})
    with ResultsStore(path) as s:
        # Then both are there, oldest first
        assert [d["ts"] for d in s.scaling_history()] == [1.0, 2.0]
        assert s.scaling_history(limit=1)[0]["action"] == "scale_up"
        with pytest.raises(InputError, match="not storable"):
            s.add_scaling({"action": "hold"})


def test_duplicate_and_closed_store_errors(store):
    r = make_result(0)
    store.add(r)
    with pytest.raises(StoreError, match=r.result_id):
        store.add(r)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()


# -- CLI: edgeapp results list|export|summary ---------------------------------------------------


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edgeapp")
    results_cmd.add_parser(parser.add_subparsers(dest="command"))
    return results_cmd.run(parser.parse_args(["results", *argv]))


def test_cli_list_export_summary(tmp_path, capsys):
    db = tmp_path / RESULTS_FILENAME
    with ResultsStore(db) as s:
        for i in range(6):
            s.add(make_result(i))
    assert cli("list", "--db", str(db), "--station", "st-1", "--limit", "1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("TIME") and len(out) == 2
    assert "104" in out[1] and "st-1" in out[1] and "validated" in out[1]  # i=4: newest on st-1
    assert cli("list", "--db", str(db), "--order", "101") == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "mismatch" in row and "missing cola; burger 1 of 2" in row, row

    assert cli("list", "--db", str(db), "--order", "102", "--json") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["order_id"] for x in lines] == ["102"]

    assert cli("export", str(tmp_path / "all.csv"), "--db", str(db)) == 0
    assert "exported 6 results" in capsys.readouterr().out
    assert cli("export", "--format", "json", str(tmp_path / "all.txt"), "--db", str(db)) == 0
    assert len(json.loads((tmp_path / "all.txt").read_text())) == 6
    capsys.readouterr()

    assert cli("summary", "--db", str(db)) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 6


def test_cli_errors_are_edgeapp_errors(tmp_path):
    with pytest.raises(StoreError, match="no results database"):
        cli("list", "--db", str(tmp_path / "none.sqlite3"))
    ResultsStore(tmp_path / "r.sqlite3").close()
    from edgeapp.errors import InputError

    with pytest.raises(InputError, match="--format"):
        cli("export", str(tmp_path / "out.xlsx"), "--db", str(tmp_path / "r.sqlite3"))


def test_default_path_is_in_the_data_folder(tmp_path):
    assert default_results_path(tmp_path) == tmp_path / "results.sqlite3"
