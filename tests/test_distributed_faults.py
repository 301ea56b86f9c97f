"""Faults: a worker killed, a worker stuck, the Producer restarted, strangers, and garbage."""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading

import msgpack
import psutil
import pytest
import zmq
import zmq.auth
from distributed_helpers import pipeline, wait_until

from edgeapp.engine.distributed import keys
from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.collector import Collector
from edgeapp.engine.distributed.processor import NoopProcessor, noop_factory
from edgeapp.engine.distributed.producer import Producer
from edgeapp.engine.distributed.worker import Worker, WorkerExit
from edgeapp.errors import SecurityError

STREAMS = ["cam-1", "cam-2", "cam-3"]


def test_kill_9_of_a_worker_mid_stream_loses_nothing_and_keeps_order() -> None:
    producer = {"heartbeat_s": 0.2, "liveness": 3, "batch_size": 2, "lease_s": 20.0}
    with pipeline(producer=producer, collector={"reorder_timeout_s": 20.0}) as pipe:
        victim = pipe.spawn_worker("--name", "victim", "--noop-delay-ms", "15")
        pipe.submit_all(STREAMS, range(60))

        def victim_done() -> int:
            return sum(w["tasks_done"] for w in pipe.producer.status()["workers"]
                       if w["name"] == "victim")
        wait_until(lambda: victim_done() >= 6, 30, "the victim worker got going")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(5)
        pipe.add_worker(noop_factory(0.002), name="survivor")
        wait_until(lambda: pipe.received.count() >= 180, 30, "every frame delivered")

        for key in STREAMS:
            assert pipe.received.by_stream[key] == list(range(60)), key
        status = pipe.producer.status()
        assert status["requeued"] > 0, "the kill should have landed while tasks were out"
        assert [w["name"] for w in status["workers"]] == ["survivor"]
        assert all(s["skipped"] == 0 for s in pipe.collector.status()["streams"].values())


def test_a_stuck_worker_loses_its_lease_and_its_late_results_are_dropped() -> None:
    release = threading.Event()

    class Stuck(NoopProcessor):
        def process_batch(self, images, metas):
            release.wait(10)
            return super().process_batch(images, metas)

    with pipeline(producer={"lease_s": 0.5, "batch_size": 2}) as pipe:
        stuck = pipe.add_worker(lambda _c: Stuck(), prefetch=1)
        pipe.submit_all(["s"], range(4))
        wait_until(lambda: pipe.producer.status()["leased"] >= 2, 10, "the stuck worker took work")
        pipe.add_worker(name="healthy")
        wait_until(lambda: pipe.received.count() >= 4, 10, "frames re-leased to the healthy one")
        release.set()
        wait_until(lambda: stuck.processed >= 2, 10, "the stuck worker woke up")

        def refused() -> int:  # its leases went to the healthy worker, which delivered them
            rejected = pipe.collector.status()["rejected"]
            return rejected.get("not_leased", 0) + rejected.get("wrong_worker", 0)
        wait_until(lambda: refused() >= 2, 10, "its late results refused: no longer its leases")
        assert pipe.received.by_stream["s"] == [0, 1, 2, 3]


def test_workers_reconnect_when_the_producer_restarts() -> None:
    with pipeline() as pipe:
        workers = [pipe.add_worker(request_timeout_s=0.5) for _ in range(2)]
        pipe.submit_all(["s"], range(20))
        wait_until(lambda: pipe.received.count() >= 20, 10, "frames before the restart")
        old_producer = pipe.producer
        pipe.restart_producer(heartbeat_s=0.2)
        assert pipe.producer is not old_producer
        pipe.submit_all(["s"], range(20, 40))
        wait_until(lambda: pipe.received.count() >= 40, 20, "frames after the restart")
        assert pipe.received.by_stream["s"] == list(range(40))
        assert all(w.exit_code is None for w in workers), "nobody left"
        # Every Producer numbers its workers w1, w2, ...: the ids cannot tell an old
        # registration from a new one, the workers' own (unique) names can. Both of these
        # processes registered with the new Producer, and it handed out the new frames.
        names = sorted(w.name for w in workers)
        wait_until(lambda: sorted(r["name"] for r in pipe.producer.status()["workers"]) == names,
                   20, "both workers registered with the new Producer")
        registered = pipe.producer.status()["workers"]
        assert sum(r["tasks_done"] for r in registered) >= 20, registered


@pytest.fixture
def key_dirs(tmp_path):
    root = tmp_path / "keys"
    keys.init_server(root)
    good = keys.add_worker(root, "good")
    bad = tmp_path / "bad"  # a keypair nobody authorised
    bad.mkdir()
    zmq.auth.create_certificates(bad, "worker")
    shutil.copy(root / "server.key", bad / "server.key")
    return root, good, bad


def test_with_curve_only_authorised_workers_get_work(key_dirs) -> None:
    root, good, bad = key_dirs
    secured = {"keys_dir": root}
    with pipeline(producer=secured, collector=secured) as pipe:
        pipe.submit_all(["s"], range(5))
        ctx = zmq.Context()
        try:
            stranger = ctx.socket(zmq.REQ)
            stranger.linger = 0
            keys.make_client_secure(stranger, keys.load_client_keys(bad))
            stranger.connect(pipe.producer.address)
            stranger.send(p.message(p.REGISTER, worker="stranger"))
            assert not stranger.poll(1000), "an unauthorised worker must get nothing"
            plain = ctx.socket(zmq.REQ)  # no CURVE at all
            plain.linger = 0
            plain.connect(pipe.producer.address)
            plain.send(p.message(p.REGISTER))
            assert not plain.poll(300)
            stranger.close()
            plain.close()
        finally:
            ctx.destroy(linger=0)
        refused = pipe.add_worker(keys_dir=bad, request_timeout_s=2.0)
        assert refused.join(10) and refused.exit_code == WorkerExit.AUTH
        pipe.workers.remove(refused)
        pipe.add_worker(keys_dir=good)
        wait_until(lambda: pipe.received.count() >= 5, 10, "the authorised worker's results")
        assert pipe.producer.status()["workers"][0]["tasks_done"] == 5


def test_binding_the_network_without_keys_is_refused() -> None:
    with pytest.raises(SecurityError, match="insecure"):
        Producer(address="tcp://0.0.0.0:*").start()
    with pytest.raises(SecurityError):
        Collector(address="tcp://0.0.0.0:*").start()
    producer = Producer(address="tcp://0.0.0.0:*", insecure=True)
    producer.start()
    producer.stop()
    assert producer.join(5)


def test_a_worker_with_no_producer_gives_up_with_cannot_connect() -> None:
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as nobody:
        port = nobody.bind_to_random_port("tcp://127.0.0.1")
        nobody.close(0)  # a port that nobody answers on
        worker = Worker(f"tcp://127.0.0.1:{port}", processor_factory="noop",
                        request_timeout_s=0.3, connect_timeout_s=0.5)
        worker.start()
        assert worker.join(10) and worker.exit_code == WorkerExit.CANNOT_CONNECT


def _router_garbage(rng: random.Random, i: int) -> list[bytes]:
    kind = i % 9
    if kind == 0:
        return [b"", rng.randbytes(rng.randint(0, 200))]
    if kind == 1:
        return [b"", msgpack.packb({"type": "GET_WORK", "x": 1})[:-1]]
    if kind == 2:
        return [b"", msgpack.packb([1, 2, 3])]
    if kind == 3:
        return [b"", msgpack.packb({"no": "type"})]
    if kind == 4:
        return [b"", p.message("GIVE_ME_EVERYTHING")]
    if kind == 5:
        return [b"", p.message(p.GET_WORK)]  # never registered
    if kind == 6:
        return [b"", p.message(p.REGISTER, worker=12345)]  # bad field
    if kind == 7:
        return [rng.randbytes(20)]  # no REQ envelope
    return [b"", b"a", b"b"]  # too many parts for a request


def _collector_garbage(rng: random.Random, i: int) -> list[bytes]:
    info = p.message(p.COLLECT, worker="fuzz")
    good = {"id": i, "stream_key": "fuzz", "seq": i}
    kind = i % 10
    if kind == 0:
        return [rng.randbytes(rng.randint(1, 300))]
    if kind == 1:
        return [info, msgpack.packb({**good, "dtype": "float64", "shape": [1, 6]}), b"\0" * 48]
    if kind == 2:
        return [info, msgpack.packb({**good, "dtype": "float32", "shape": [2, 6]}), b"\0" * 40]
    if kind == 3:
        return [info, msgpack.packb({**good, "dtype": "float32", "shape": [1, 6]})]  # no data
    if kind == 4:
        return [p.message("HELLO")]
    if kind == 5:
        return [info] + [b"x"] * 300
    if kind == 6:
        return [info, msgpack.packb({**good, "dtype": "float32", "shape": [60000, 60000]}), b""]
    if kind == 7:
        return [info, msgpack.packb({**good, "dtype": "float32", "shape": [1, 1, 1, 1, 6]}), b""]
    if kind == 8:
        return [info, msgpack.packb({**good, "dtype": "float32", "shape": [1, 5]}), b"\0" * 20]
    return [info, msgpack.packb({"id": "x", "stream_key": "fuzz", "seq": -3}), b""]


def test_fuzzing_both_servers_leaves_them_working_and_counting() -> None:
    rng = random.Random(1234)
    rss_before = psutil.Process().memory_info().rss
    with pipeline(collector={"max_result_bytes": 1 << 20}) as pipe:
        ctx = zmq.Context()
        try:
            dealer = ctx.socket(zmq.DEALER)
            push = ctx.socket(zmq.PUSH)
            for s in (dealer, push):
                s.linger = 0
            dealer.connect(pipe.producer.address)
            push.connect(pipe.collector.address)
            for i in range(5000):
                dealer.send_multipart(_router_garbage(rng, i))
                push.send_multipart(_collector_garbage(rng, i))
            for _ in range(3):  # over MAXMSGSIZE: ZeroMQ drops the peer; others carry on
                for sock, addr in ((ctx.socket(zmq.DEALER), pipe.producer.address),
                                   (ctx.socket(zmq.PUSH), pipe.collector.address)):
                    sock.linger = 0
                    sock.connect(addr)
                    sock.send_multipart([b"", b"\0" * (2 << 20)])
                    sock.close()

            def counted() -> tuple[int, int]:
                return (sum(pipe.producer.status()["rejected"].values()),
                        sum(pipe.collector.status()["rejected"].values()))
            wait_until(lambda: counted() == (5000, 5000), 30, f"all garbage counted {counted()}")
            dealer.close()
            push.close()
        finally:
            ctx.destroy(linger=0)
        rejected = pipe.producer.status()["rejected"]
        assert {p.REJECT_BAD_MSGPACK, p.REJECT_NOT_A_MAP, p.REJECT_MISSING_TYPE,
                p.REJECT_UNKNOWN_TYPE, p.REJECT_NOT_REGISTERED, p.REJECT_BAD_FIELD,
                p.REJECT_NOT_REQ, p.REJECT_BAD_PARTS} <= set(rejected), rejected
        rejected = pipe.collector.status()["rejected"]
        assert {p.REJECT_BAD_MSGPACK, p.REJECT_BAD_DTYPE, p.REJECT_SIZE_MISMATCH,
                p.REJECT_BAD_PARTS, p.REJECT_UNKNOWN_TYPE, p.REJECT_TOO_MANY_PARTS,
                p.REJECT_TOO_LARGE, p.REJECT_BAD_FIELD, p.REJECT_BAD_SHAPE} <= set(rejected), \
            rejected
        assert pipe.producer.status()["workers"] == [], "garbage registered nobody"

        # then a normal run completes
        for _ in range(2):
            pipe.add_worker()
        pipe.submit_all(STREAMS, range(30))
        wait_until(lambda: pipe.received.count() >= 90, 20, "the normal run after the fuzz")
        assert all(pipe.received.by_stream[k] == list(range(30)) for k in STREAMS)
        assert "fuzz" not in pipe.received.by_stream
    growth_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20
    assert growth_mb < 100, f"RSS grew {growth_mb:.0f} MB"
