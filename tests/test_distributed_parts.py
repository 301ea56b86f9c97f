"""The transport's parts on their own: task queue, reorder buffer, worker book, keys, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from edgeapp.cli import main as cli_main
from edgeapp.engine.distributed import keys
from edgeapp.engine.distributed.dialects import Dialect
from edgeapp.engine.distributed.processor import NoopProcessor, Processor, load_factory
from edgeapp.engine.distributed.reorder import StreamReorder
from edgeapp.engine.distributed.task_queue import Task, TaskQueue
from edgeapp.engine.distributed.worker import resolve_collector
from edgeapp.engine.distributed.workers import WorkerBook
from edgeapp.errors import ConfigError, SecurityError

IMG = np.zeros((2, 2, 3), np.uint8)


def task(i: int, stream: str = "a", seq: int | None = None) -> Task:
    return Task(i, stream, i if seq is None else seq, 0.0, IMG)


# --- task queue -----------------------------------------------------------------------------

def test_queue_hands_out_oldest_first_across_streams() -> None:
    q = TaskQueue(10)
    for i, s in enumerate("abab"):
        q.put(task(i, s))
    assert [t.id for t in q.pop(3)] == [0, 1, 2] and len(q) == 1


def test_full_queue_drops_oldest_of_the_most_behind_stream() -> None:
    q = TaskQueue(4)
    for i in range(3):
        q.put(task(i, "slow"))
    q.put(task(3, "fast"))
    dropped = q.put(task(4, "fast"))
    assert [t.id for t in dropped] == [0], "slow has the most queued: its oldest goes"
    assert q.dropped() == {"slow": 1} and q.sizes() == {"slow": 2, "fast": 2}
    dropped = q.put(task(5, "third"))
    assert [t.id for t in dropped] == [1], "a tie goes to the stream with the older head"


def test_requeued_tasks_go_back_to_the_front_in_their_order() -> None:
    q = TaskQueue(10)
    tasks = [task(i) for i in range(5)]
    for t in tasks:
        q.put(t)
    out = q.pop(3)
    q.requeue([out[2], out[0]])  # lost by two workers, in any order
    assert [t.id for t in q.pop(10)] == [0, 2, 3, 4]


# --- reorder buffer -------------------------------------------------------------------------

def test_reorder_releases_in_order_and_waits_for_expected_frames() -> None:
    r = StreamReorder(timeout_s=1.0)
    for seq in range(4):
        r.expect(seq)
    r.add(2, "c", now=0.0)
    r.add(1, "b", now=0.0)
    assert r.pop_ready(0.1) == [], "0 is expected and missing"
    r.add(0, "a", now=0.2)
    assert r.pop_ready(0.2) == [(0, "a"), (1, "b"), (2, "c")]
    assert r.next_deadline() is None


def test_reorder_skips_a_missing_frame_after_the_timeout_only() -> None:
    r = StreamReorder(timeout_s=1.0)
    for seq in range(3):
        r.expect(seq)
    r.add(1, "b", now=10.0)
    r.add(2, "c", now=10.5)
    assert r.next_deadline() == 11.0, "the oldest held result sets the deadline"
    assert r.pop_ready(10.99) == []
    assert r.pop_ready(11.0) == [(1, "b"), (2, "c")]
    assert r.counts["skipped"] == 1
    assert not r.add(0, "a", now=12.0) and r.counts["late"] == 1


def test_cancel_unblocks_and_duplicates_are_dropped() -> None:
    r = StreamReorder(timeout_s=5.0)
    r.expect(0)
    r.expect(1)
    r.add(1, "b", now=0.0)
    r.cancel(0)
    assert r.pop_ready(0.0) == [(1, "b")]
    assert not r.add(1, "b", now=0.0) and r.counts["duplicate"] == 1
    r.add(3, "d", now=0.0)
    assert not r.add(3, "d", now=0.0) and r.counts["duplicate"] == 2
    assert r.pop_ready(0.0) == [(3, "d")], "unexpected frames pass when nothing is before them"


def test_reorder_memory_is_bounded() -> None:
    r = StreamReorder(timeout_s=100.0, max_pending=8)
    for seq in range(1000):
        r.expect(seq)
    assert r.pending()[0] <= 8 and r.counts["skipped"] == 1000 - 8
    for seq in range(2000, 2100):
        r.add(seq, seq, now=0.0)
        r.pop_ready(0.0)
    assert r.pending()[1] <= 8 + 1


def test_flush_releases_everything_held() -> None:
    r = StreamReorder(timeout_s=100.0)
    for seq in range(5):
        r.expect(seq)
    r.add(3, "d", now=0.0)
    r.add(1, "b", now=0.0)
    assert r.flush() == [(1, "b"), (3, "d")]


# --- worker book ----------------------------------------------------------------------------

def test_book_requeues_tasks_of_silent_workers_and_overdue_leases() -> None:
    book = WorkerBook(lease_s=5.0, silent_after_s=1.0)
    quiet, _, _ = book.register(b"q", "quiet", "h", 1, 1, now=0.0)
    busy, _, _ = book.register(b"b", "busy", "h", 2, 1, now=0.0)
    book.lease(quiet, [task(1), task(2)], now=0.0)
    book.lease(busy, [task(3)], now=0.0)
    book.touch(busy, 4.0, {"processed": 9})
    silent, lost = book.expire(now=2.0)
    assert [r.name for r in silent] == ["quiet"] and sorted(t.id for t in lost) == [1, 2]
    lease, _ = book.claim(3, "a", 3, busy.worker_id, "")
    assert lease is not None and lease.task.id == 3 and book.lease_count() == 0
    assert book.claim(99, None, None, busy.worker_id, "") == (None, "not_leased")
    assert book.snapshot()[0]["tasks_done"] == 1 and book.snapshot()[0]["processed"] == 9
    book.lease(busy, [task(4)], now=4.0)
    _, lost = book.expire(now=9.5)
    assert [t.id for t in lost] == [4], "the lease ran out although its worker is alive"


def test_a_result_claims_only_the_lease_it_answers() -> None:
    book = WorkerBook(lease_s=5.0, silent_after_s=1.0)
    mine, _, _ = book.register(b"m", "mine", "h", 1, 1, now=0.0, user_id="KEY-M")
    other, _, _ = book.register(b"o", "other", "h", 2, 1, now=0.0)
    thesis, _, _ = book.register(b"worker-1", "", "h", 0, 1, now=0.0, dialect=Dialect.THESIS)
    book.lease(mine, [task(1, "cam", 10)], now=0.0)
    book.lease(thesis, [task(2, "cam", 11)], now=0.0)
    wid = mine.worker_id
    refused = {
        "not_leased": book.claim(7, "cam", 10, wid, "KEY-M"),
        "wrong_stream": book.claim(1, "other-cam", 10, wid, "KEY-M"),
        "wrong_seq": book.claim(1, "cam", 10 + 1_000_000, wid, "KEY-M"),
        "wrong_worker": book.claim(1, "cam", 10, other.worker_id, "KEY-M"),
        "unnamed": book.claim(1, "cam", 10, None, "KEY-M"),
        "other key": book.claim(1, "cam", 10, wid, "KEY-X"),
    }
    assert {k: v[1] for k, v in refused.items()} == {
        "not_leased": "not_leased", "wrong_stream": "wrong_stream", "wrong_seq": "wrong_seq",
        "wrong_worker": "wrong_worker", "unnamed": "wrong_worker", "other key": "wrong_worker"}
    assert book.lease_count() == 2, "a refused result leaves the lease alone"
    lease, reason = book.claim(1, "cam", 10, wid, "KEY-M")
    assert lease is not None and (lease.task.stream_key, lease.task.seq) == ("cam", 10)
    assert book.claim(1, "cam", 10, wid, "KEY-M")[1] == "not_leased", "a second copy"
    lease, _ = book.claim(2, None, None, None, "")
    assert lease is not None and lease.task.seq == 11, "the thesis code names no seq or worker"


def test_a_worker_without_heartbeats_is_kept_while_it_holds_leases() -> None:
    book = WorkerBook(lease_s=5.0, silent_after_s=1.0)
    busy, _, _ = book.register(b"worker-1", "", "h", 0, 1, now=0.0, dialect=Dialect.THESIS)
    book.lease(busy, [task(1)], now=0.0)
    assert book.expire(now=3.0) == ([], []), "a 3 s batch without a word is no death"
    silent, lost = book.expire(now=5.5)
    assert silent == [] and [t.id for t in lost] == [1], "the lease decides"
    silent, _ = book.expire(now=5.9)
    assert silent == [], "no lease, but not silent for lease_s + silent_after_s yet"
    silent, _ = book.expire(now=6.1)
    assert [r.name for r in silent] == [busy.name]


def test_registering_again_replaces_the_old_record() -> None:
    book = WorkerBook(lease_s=5.0, silent_after_s=1.0)
    old, _, _ = book.register(b"x1", "cam-box", "h", 1, 1, now=0.0)
    book.lease(old, [task(1)], now=0.0)
    _, replaced, tasks = book.register(b"x2", "cam-box", "h", 1, 1, now=0.5)
    assert replaced == [old] and [t.id for t in tasks] == [1] and len(book.records()) == 1


# --- keys and addresses ---------------------------------------------------------------------

def test_keys_init_add_list_revoke(tmp_path) -> None:
    root = tmp_path / "keys"
    keys.init_server(root)
    with pytest.raises(SecurityError):
        keys.init_server(root)
    folder = keys.add_worker(root, "box-1")
    assert keys.list_workers(root) == ["box-1"]
    server, client = keys.load_server_keys(root), keys.load_client_keys(folder)
    assert client.server_public == server.public and len(client.secret) == 40
    with pytest.raises(SecurityError):
        keys.add_worker(root, "../evil")
    assert keys.revoke_worker(root, "box-1") and keys.list_workers(root) == []
    assert not keys.revoke_worker(root, "box-1")


def test_keys_cli(tmp_path, capsys) -> None:
    root = str(tmp_path / "k")
    assert cli_main(["keys", "--keys-dir", root, "init"]) == 0
    assert cli_main(["keys", "--keys-dir", root, "add-worker", "edge-7"]) == 0
    capsys.readouterr()
    assert cli_main(["keys", "--keys-dir", root, "list"]) == 0
    assert capsys.readouterr().out.split() == ["edge-7"]
    assert cli_main(["keys", "--keys-dir", root, "revoke", "nobody"]) == SecurityError.exit_code


def test_worker_flag_needs_connect(capsys) -> None:
    assert cli_main(["--worker"]) == ConfigError.exit_code
    assert "--connect" in capsys.readouterr().err


@pytest.mark.parametrize("address,local", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:1", True), ("tcp://[::1]:5", True),
    ("ipc:///tmp/x", True), ("inproc://x", True), ("tcp://0.0.0.0:5555", False),
    ("tcp://*:5555", False), ("tcp://10.1.2.3:5555", False), ("tcp://eth0:5555", False),
])
def test_binding_the_network_needs_keys_or_insecure(address: str, local: bool) -> None:
    assert keys.is_local_address(address) is local
    if local:
        keys.check_bind(address, None, insecure=False)
    else:
        with pytest.raises(SecurityError, match="--insecure"):
            keys.check_bind(address, None, insecure=False)
        keys.check_bind(address, None, insecure=True)


def test_collector_address_is_seen_from_the_worker() -> None:
    assert resolve_collector("tcp://0.0.0.0:5556", "tcp://10.0.0.5:5555") == "tcp://10.0.0.5:5556"
    assert resolve_collector("tcp://*:7", "tcp://box:5555") == "tcp://box:7"
    assert resolve_collector("tcp://10.0.0.9:5556", "tcp://x:1") == "tcp://10.0.0.9:5556"


def test_processor_factories() -> None:
    proc = load_factory("noop")({})
    assert isinstance(proc, NoopProcessor)
    assert isinstance(load_factory("auto")({"work_type": "NONE"}), NoopProcessor)
    detector = load_factory("auto")({"work_type": "YOLO_DETECTION"})  # built, not loaded
    assert isinstance(detector, Processor) and not isinstance(detector, NoopProcessor)
    out = proc.process_batch([IMG, IMG], [{}, {}])
    assert [o.shape for o in out] == [(0, 6), (0, 6)] and out[0].dtype == np.float32
    for spec in ("nope", "no.such.module:make"):
        with pytest.raises(ConfigError):
            load_factory(spec)
    with pytest.raises(ConfigError):
        load_factory("auto")({"work_type": "TELEPATHY"})


def test_curve_is_available() -> None:
    assert zmq.has("curve"), "pyzmq without CURVE: remote workers cannot be secured"
