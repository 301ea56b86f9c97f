"""Only results for leased tasks count: forged results are dropped and counted, and stream
slots cannot be taken by strangers and come back when streams end or go idle."""

from __future__ import annotations

import random

import msgpack
import numpy as np
import zmq
from distributed_helpers import pipeline, wait_until

from edgeapp.engine.distributed import protocol as p

DETS = np.array([[1, 2, 3, 4, 0.9, 0]], np.float32)


class Forger:
    """A registered edgeapp-dialect peer that takes real tasks and pushes what it likes."""

    def __init__(self, ctx: zmq.Context, producer: str, collector: str) -> None:
        self.req = ctx.socket(zmq.REQ)
        self.push = ctx.socket(zmq.PUSH)
        for sock in (self.req, self.push):
            sock.linger = 0
        self.req.connect(producer)
        self.push.connect(collector)
        conf = self.ask(p.message(p.REGISTER, worker="forger", host="h", pid=1))
        self.worker_id = p.unpack(conf[0])["worker_id"]

    def ask(self, request: bytes) -> list[bytes]:
        self.req.send(request)
        assert self.req.poll(5000), "the Producer did not answer"
        return self.req.recv_multipart()

    def take(self, n: int) -> list[dict]:
        """Leases of ``n`` tasks (their metadata as handed out)."""
        parts = self.ask(p.message(p.GET_WORK, max_tasks=n, stats={}))
        assert p.unpack(parts[0])["type"] == p.INFERENCE, p.unpack(parts[0])
        return [meta for meta, _ in p.decode_items(parts)]

    def send(self, meta: dict, dets: np.ndarray = DETS, worker: str | None = None) -> None:
        meta = {k: v for k, v in meta.items() if k not in ("dtype", "shape")}
        self.push.send_multipart([p.message(p.COLLECT, worker=worker or self.worker_id),
                                  *p.array_parts(dets, **meta)])


def test_forged_results_are_dropped_and_counted_and_the_live_stream_keeps_flowing() -> None:
    # Given a live stream, and a peer that registered and holds leases of three of its frames
    with pipeline(producer={"heartbeat_s": 5.0, "batch_size": 4, "end_timeout_s": 1.0}) as pipe:
        pipe.submit_all(["live"], range(10))
        ctx = zmq.Context()
        try:
            forger = Forger(ctx, pipe.producer.address, pipe.collector.address)
            held = forger.take(3)
            assert [m["seq"] for m in held] == [0, 1, 2]
            honest = pipe.add_worker()
            pipe.submit_all(["live"], range(10, 40))
            wait_until(lambda: honest.worker_id is not None, 10, "the honest worker registered")

            # When it pushes forged results
            first = held[0]
            forger.send({**first, "seq": first["seq"] + 1_000_000})  # far ahead
            forger.send({**first, "stream_key": "nobody-submitted-this"})  # unknown stream
            forger.send({**first, "id": first["id"] + 10**9})  # a task never handed out
            forger.send(first, worker=honest.worker_id)  # names another worker
            forger.send(first, dets=np.array([[1, 2, np.nan, 4, 0.9, 0]], np.float32))
            forger.send(first, dets=np.array([[1, 2, 3, np.inf, 0.9, 0]], np.float32))
            expected = {p.REJECT_WRONG_SEQ: 1, p.REJECT_WRONG_STREAM: 1, p.REJECT_NOT_LEASED: 1,
                        p.REJECT_WRONG_WORKER: 1, p.REJECT_NON_FINITE: 2}
            wait_until(lambda: pipe.collector.status()["rejected"] == expected, 10,
                       f"forgeries counted by reason: {pipe.collector.status()['rejected']}")

            # Then none of them took its lease: the real answers still count, in order
            for meta in held:
                forger.send(meta)
            forger.send(held[0])  # a second copy: its lease has ended
            wait_until(lambda: pipe.received.count() >= 40, 20, "the live stream to the end")
            wait_until(lambda: pipe.collector.status()["rejected"].get(p.REJECT_NOT_LEASED) == 2,
                       10, "the second copy refused")
        finally:
            ctx.destroy(linger=0)
        assert pipe.received.by_stream == {"live": list(range(40))}
        live = pipe.collector.status()["streams"]["live"]
        assert live["duplicate"] == 0 and live["skipped"] == 0
        delivered = {r.seq: r for r in pipe.received.results}
        assert delivered[0].meta["worker"] == forger.worker_id
        assert delivered[0].detections.tolist() == DETS.tolist()


def test_stream_slots_are_not_taken_by_strangers_and_come_back() -> None:
    with pipeline(collector={"max_streams": 2, "stream_idle_s": 0.5}) as pipe:
        ctx = zmq.Context()
        try:
            # Given 300 well-formed results for random streams, from nobody
            push = ctx.socket(zmq.PUSH)
            push.linger = 0
            push.connect(pipe.collector.address)
            rng = random.Random(7)
            for i in range(300):
                meta = {"id": rng.getrandbits(62), "stream_key": f"s-{rng.getrandbits(32)}",
                        "seq": i}
                push.send_multipart([p.message(p.COLLECT, worker="w1"),
                                     *p.array_parts(DETS, **meta)])
            wait_until(lambda: pipe.collector.status()["rejected"].get(p.REJECT_NOT_LEASED)
                       == 300, 10, "all of them refused")
            push.close()
        finally:
            ctx.destroy(linger=0)
        assert pipe.collector.status()["streams"] == {}, "they took no stream slot"

        # When two streams hold both slots with frames on their way, a third has none
        pipe.submit_all(["a", "b"], range(2))
        pipe.submit_all(["c"], range(1))
        assert pipe.producer.dropped() == {"c": 1}, "its frame is dropped, not lost in flight"
        assert pipe.collector.status()["rejected"][p.REJECT_TOO_MANY_STREAMS] == 1

        # Then slots come back once streams are done: at once when needed, or when idle
        pipe.add_worker()
        wait_until(lambda: pipe.received.count() >= 4, 10, "a and b delivered")
        pipe.submit_all(["c"], range(1, 3))
        wait_until(lambda: pipe.received.by_stream["c"] == [1, 2], 10, "c got a slot")
        wait_until(lambda: pipe.collector.status()["streams"] == {}, 10,
                   "idle streams gave their slots back")
        pipe.submit_all(["d"], range(2))
        wait_until(lambda: pipe.received.by_stream["d"] == [0, 1], 10, "d delivered")
        pipe.collector.forget("d")
        wait_until(lambda: "d" not in pipe.collector.status()["streams"], 5, "d forgotten")


def test_a_collector_without_a_producer_accepts_nothing() -> None:
    from edgeapp.engine.distributed.collector import Collector

    collector = Collector()
    collector.start()
    try:
        with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
            push.linger = 0
            push.connect(collector.address)
            push.send_multipart([p.message(p.COLLECT, worker="w1"), msgpack.packb(
                {"id": 1, "stream_key": "s", "seq": 0, "dtype": "float32", "shape": [1, 6]}),
                DETS.tobytes()])
            wait_until(lambda: collector.status()["rejected"] == {p.REJECT_NOT_LEASED: 1}, 5,
                       "refused: nothing is leased without a Producer")
    finally:
        collector.stop()
        assert collector.join(5)
