"""Workers written to the thesis' code and to the seed's text, served in their own dialects.

The clients here are written from the message shapes of docs/work-api-dialects.md, not with
edgeapp's worker: plain REQ and PUSH sockets and msgpack.
"""

from __future__ import annotations

import time

import cv2
import msgpack
import numpy as np
import zmq
from distributed_helpers import pipeline, wait_until

from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.video_output import VideoOutput


class ThesisWorker:
    """The thesis' worker on the wire: a REQ socket it names, a PUSH socket, no heartbeats."""

    def __init__(self, ctx: zmq.Context, producer: str, collector: str, number: int) -> None:
        self.req = ctx.socket(zmq.REQ)
        self.req.setsockopt_string(zmq.IDENTITY, f"worker-{number}")
        self.push = ctx.socket(zmq.PUSH)
        for sock in (self.req, self.push):
            sock.linger = 0
        self.req.connect(producer)
        self.push.connect(collector)

    def ask(self, req: dict) -> tuple[dict, list[tuple[dict, np.ndarray]]]:
        self.req.send(msgpack.packb(req))
        assert self.req.poll(5000), f"no answer to {req}"
        msg = self.req.recv_multipart()
        info = msgpack.unpackb(msg[0])
        tasks = []
        for i in range(1, len(msg), 2):  # TaskUtil.reconstruct_task
            md = msgpack.unpackb(msg[i])
            data = np.frombuffer(msg[i + 1], dtype=md["dtype"]).reshape(md["shape"])
            tasks.append((md, data))
        return info, tasks

    def get_work(self, previous_processing_time: float) -> tuple[dict, list]:
        """GET_WORK until the answer is not the held-back NO_WORK (the thesis ignores it)."""
        while True:
            info, tasks = self.ask({"type": "GET_WORK",
                                    "previous_processing_time": previous_processing_time})
            if info["type"] != p.NO_WORK:
                return info, tasks

    def send_result(self, md: dict, frame: np.ndarray) -> None:
        meta = {"id": md["id"], "type": "COLLECT", "stream_key": md["stream_key"],
                "shape": frame.shape, "dtype": str(frame.dtype)}
        self.push.send_multipart([msgpack.packb({"type": "WORK"}), msgpack.packb(meta), frame])

    def send_end(self) -> None:
        self.push.send_multipart([msgpack.packb({"type": "END"})])


def test_a_thesis_worker_registers_works_changes_grade_survives_a_long_batch_and_ends(
        tmp_path) -> None:
    video = VideoOutput(tmp_path / "cam.avi", "cam", lambda _k, _s: None, fps=5)
    with pipeline(producer={"heartbeat_s": 0.2, "batch_size": 3, "grade": 1}) as pipe:
        pipe.collector.subscribe(video, frames=True)
        pipe.submit_all(["cam"], range(6))
        ctx = zmq.Context()
        try:
            thesis = ThesisWorker(ctx, pipe.producer.address, pipe.collector.address, 1)
            # registers
            info, _ = thesis.ask({"type": "REGISTER"})
            assert (info["type"], info["work_type"], info["work_load"]) == \
                ("REGISTRATION_CONFIRMATION", "YOLO_DETECTION", 1)
            assert info["loading_mode"] in (0, 1)
            assert pipe.producer.status()["workers"][0]["dialect"] == "thesis"
            # gets tasks, each with a type, in a WORK reply
            info, first = thesis.get_work(0.0)
            assert info["type"] == "WORK" and len(first) == 3
            assert all(md["type"] == "INFERENCE" and md["stream_key"] == "cam"
                       and data.shape == (24, 32, 3) for md, data in first)
            # changes grade: CHANGE_INFERENCE_QUALITY before its next task
            pipe.producer.set_grade(2)
            info, tasks = thesis.get_work(0.01)
            assert info == {"type": "CHANGE", "CHANGE_INFERENCE_QUALITY": 2} and tasks == []
            info, second = thesis.get_work(0.01)
            assert info["type"] == "WORK" and [md["grade"] for md, _ in second] == [2, 2, 2]
            # a 3 s batch without a word: the lease, not the 0.6 s silence, decides
            time.sleep(3.0)
            status = pipe.producer.status()
            assert [w["dialect"] for w in status["workers"]] == ["thesis"], "still registered"
            assert status["requeued"] == 0 and status["leased"] == 6
            # sends results: processed frames, no seq, no worker name
            for md, data in first + second:
                thesis.send_result(md, np.ascontiguousarray(255 - data))
            wait_until(lambda: video.written == 6, 10, "six processed frames written")
            assert pipe.producer.status()["leased"] == 0, "every lease claimed"
            assert pipe.received.count() == 0, "frames reach only subscribers that want them"
            assert pipe.collector.status()["rejected"] == {}
            # ends: END to its GET_WORK, and its END to the Collector is taken
            pipe.producer.finish(drain_timeout_s=5)
            info, _ = thesis.get_work(0.01)
            assert info == {"type": "END"}
            thesis.send_end()
            wait_until(lambda: pipe.collector.status().get("ended") == 1, 5, "its END counted")
        finally:
            ctx.destroy(linger=0)
    video.close()
    cap = cv2.VideoCapture(str(tmp_path / "cam.avi"))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == 6 and all(f.mean() > 200 for f in frames), "the processed frames"


def test_strangers_get_what_they_understand_no_sooner_than_the_hold() -> None:
    with pipeline(producer={"stranger_hold_s": 1.0}) as pipe:
        ctx = zmq.Context()
        try:
            lost = ThesisWorker(ctx, pipe.producer.address, pipe.collector.address, 7)
            lost.req.send(msgpack.packb({"type": "GET_WORK", "previous_processing_time": 0.1}))
            assert not lost.req.poll(300), "held back: a client in a loop cannot spin"
            assert lost.req.poll(5000)
            assert msgpack.unpackb(lost.req.recv()) == {"type": "END"}, "the thesis knows END"
            ours = ctx.socket(zmq.REQ)
            ours.linger = 0
            ours.connect(pipe.producer.address)
            ours.send(p.message(p.HEARTBEAT, stats={}))
            assert ours.poll(5000)
            reply = p.unpack(ours.recv())
            assert (reply["type"], reply["reason"]) == (p.ERROR, p.REJECT_NOT_REGISTERED), \
                "an edgeapp worker registers again on this"
            assert pipe.producer.status()["rejected"] == {p.REJECT_NOT_REGISTERED: 2}
        finally:
            ctx.destroy(linger=0)


def test_a_seed_text_worker_gets_inference_and_change_work_load() -> None:
    with pipeline(producer={"grade": 0}) as pipe:
        pipe.submit_all(["cam"], range(2))
        with zmq.Context() as ctx, ctx.socket(zmq.REQ) as req:
            req.linger = 0
            req.connect(pipe.producer.address)

            def ask(kind: str) -> list[bytes]:
                req.send(msgpack.packb({"type": kind}))
                assert req.poll(5000)
                return req.recv_multipart()
            assert msgpack.unpackb(ask("REGISTER")[0])["work_load"] == 0
            assert pipe.producer.status()["workers"][0]["dialect"] == "seed"
            pipe.producer.set_grade(1)
            assert msgpack.unpackb(ask("GET_WORK")[0]) == {"type": "CHANGE",
                                                            "CHANGE_WORK_LOAD": 1}
            parts = ask("GET_WORK")
            assert msgpack.unpackb(parts[0])["type"] == "INFERENCE" and len(parts) == 5
            md = msgpack.unpackb(parts[1])
            assert {"id", "dtype", "shape"} <= set(md)
