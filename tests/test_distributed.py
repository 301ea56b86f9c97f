"""Producer → workers → Collector on real sockets: order, grades, clean END, drops, status."""

from __future__ import annotations

import signal

import cv2
import numpy as np
import pytest
import zmq
from distributed_helpers import RecordingProcessor, pipeline, wait_until

from edgeapp.engine.api import WorkerJoined, WorkerLeft
from edgeapp.engine.distributed import protocol as p
from edgeapp.engine.distributed.collector import DetectionResult
from edgeapp.engine.distributed.processor import noop_factory
from edgeapp.engine.distributed.producer import Producer, ProducerState
from edgeapp.engine.distributed.video_output import VideoOutput
from edgeapp.engine.distributed.worker import WorkerExit
from edgeapp.errors import InputError

STREAMS = ["cam-1", "cam-2", "cam-3"]


def test_two_workers_three_streams_every_frame_once_in_order() -> None:
    with pipeline(producer={"batch_size": 3}) as pipe:
        workers = [pipe.add_worker(noop_factory(0.002)) for _ in range(2)]
        pipe.submit_all(STREAMS, range(60), pause_s=0.001)
        wait_until(lambda: pipe.received.count() >= 180, 20, "all 180 frames delivered")
        for key in STREAMS:
            assert pipe.received.by_stream[key] == list(range(60)), key
        status = pipe.collector.status()
        assert all(s["skipped"] == 0 and s["duplicate"] == 0 for s in status["streams"].values())
        assert all(w.processed > 0 for w in workers), "both workers should have taken work"
        book = pipe.producer.status()["workers"]
        assert sorted(w["tasks_done"] for w in book) == sorted(w.processed for w in workers)
        assert {w["name"] for w in book} == {w.name for w in workers}
        assert all(w["host"] and w["last_seen_s"] < 5 for w in book)
        result = pipe.received.results[0]
        assert result.detections.shape == (0, 6) and result.detections.dtype == np.float32
        assert {"capture_ts", "grade", "worker", "timings", "recv_ts"} <= set(result.meta)


def test_grade_change_reaches_every_worker_before_its_next_task() -> None:
    # Rule under test: every task is processed at the grade it was handed out at, and every
    # task submitted after set_grade(n) returned is processed at n — on every worker.
    log: list[dict] = []
    procs: dict[str, RecordingProcessor] = {}

    def factory(name: str):
        def make(_conf):
            procs[name] = RecordingProcessor(log, name, delay_s=0.003)
            return procs[name]
        return make

    with pipeline(producer={"grade": 1, "batch_size": 2}) as pipe:
        for name in ("w1", "w2"):
            pipe.add_worker(factory(name), prefetch=2)
        pipe.submit_all(["s"], range(40), pause_s=0.002)
        wait_until(lambda: pipe.received.count() >= 10, 10, "the first frames")
        pipe.producer.set_grade(2)
        pipe.submit_all(["s"], range(40, 80), pause_s=0.002)
        wait_until(lambda: pipe.received.count() >= 80, 20, "all frames")
        late = pipe.add_worker(factory("late"))
        wait_until(lambda: late.grade is not None, 10, "the late worker loaded")

        assert pipe.received.by_stream["s"] == list(range(80))
        assert all(e["at"] == e["handed_out_at"] for e in log), \
            [e for e in log if e["at"] != e["handed_out_at"]]
        assert all(e["at"] == 2 for e in log if e["seq"] >= 40)
        assert procs["w1"].grades[-1] == 2 and procs["w2"].grades[-1] == 2
        assert procs["late"].grades == [2], "a late joiner loads the current grade"
        assert {w["grade"] for w in pipe.producer.status()["workers"]} == {2}


def test_finish_drains_the_queue_then_ends_every_worker() -> None:
    events: list = []
    with pipeline() as pipe:
        pipe.producer.on_event = events.append
        pipe.submit_all(STREAMS, range(20))
        workers = [pipe.add_worker() for _ in range(2)]
        pipe.producer.finish(drain_timeout_s=20)
        assert not pipe.producer.submit("cam-1", 99, np.zeros((2, 2), np.uint8))
        assert pipe.producer.join(20)
        for w in workers:
            assert w.join(10) and w.exit_code == WorkerExit.OK
        # every frame was done; the last results may still be on their way to the Collector
        wait_until(lambda: all(pipe.received.by_stream[k] == list(range(20)) for k in STREAMS),
                   10, "every result")
        assert pipe.producer.state is ProducerState.STOPPED
        assert sum(isinstance(e, WorkerJoined) for e in events) == 2
        assert [e.reason for e in events if isinstance(e, WorkerLeft)] == ["end", "end"]


def test_stop_does_not_hang_and_late_joiners_get_end() -> None:
    with pipeline(producer={"end_grace_s": 1.0}) as pipe:
        ctx = zmq.Context()
        try:
            silent = ctx.socket(zmq.REQ)  # registers, then never asks again
            silent.linger = 0
            silent.connect(pipe.producer.address)
            silent.send(p.message(p.REGISTER, worker="silent"))
            assert silent.poll(5000)
            silent.recv()
            pipe.producer.stop()
            late = ctx.socket(zmq.REQ)
            late.linger = 0
            late.connect(pipe.producer.address)
            late.send(p.message(p.REGISTER, worker="late"))
            assert late.poll(5000), "a worker that joins while ending gets an answer"
            assert p.unpack(late.recv())["type"] == p.END
            assert pipe.producer.join(10), "stop must not wait for a worker that is gone"
            silent.close()
            late.close()
        finally:
            ctx.destroy(linger=0)


def test_full_queue_drops_and_the_collector_does_not_wait_for_dropped_frames() -> None:
    with pipeline(producer={"queue_size": 10}, collector={"reorder_timeout_s": 30}) as pipe:
        pipe.submit_all(["busy"], range(25))
        pipe.submit_all(["calm"], range(3))
        assert pipe.producer.queue_size() == 10
        assert pipe.producer.dropped() == {"busy": 18}, "the most-behind stream pays"
        pipe.add_worker()
        wait_until(lambda: pipe.received.count() >= 10, 20, "the kept frames")
        assert pipe.received.by_stream["busy"] == list(range(18, 25))
        assert pipe.received.by_stream["calm"] == list(range(3))
        assert pipe.collector.status()["streams"]["busy"]["skipped"] == 0, \
            "dropped frames were cancelled, not waited for"


def test_cli_worker_process_runs_and_leaves_on_sigterm() -> None:
    with pipeline() as pipe:
        proc = pipe.spawn_worker("--name", "cli-box", "--child", cli=True)
        pipe.submit_all(["s"], range(10))
        wait_until(lambda: pipe.received.count() >= 10, 30, "frames from the CLI worker")
        assert [w["name"] for w in pipe.producer.status()["workers"]] == ["cli-box"]
        proc.send_signal(signal.SIGINT)  # --child: ignored
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == WorkerExit.OK, proc.stderr.read().decode()[-2000:]


def test_video_output_writes_annotated_frames(tmp_path) -> None:
    frames = {i: np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)}
    out = VideoOutput(tmp_path / "out.avi", "cam", lambda _k, seq: frames.get(seq), fps=5)
    box = np.array([[4, 4, 30, 30, 0.9, 1]], np.float32)
    for seq in range(6):  # frame 5 is not in the lookup any more
        out(DetectionResult("cam", seq, box, {}))
    out(DetectionResult("other", 0, box, {}))
    out.close()
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert (n, out.written, out.missing) == (5, 5, 1)


def test_bad_input_to_the_producer_is_refused() -> None:
    with pytest.raises(InputError):
        Producer(grade=3)
    producer = Producer()
    with pytest.raises(InputError):
        producer.set_grade(7)
    with pytest.raises(InputError):
        producer.submit("s", 0, np.zeros(3, np.float64))
    with pytest.raises(InputError):
        producer.submit("s", 0, np.zeros(3, np.uint8), roi=object())
    producer.stop()
    assert producer.join(10) and producer.state is ProducerState.STOPPED


def test_transport_bench_reports_its_figures() -> None:
    from edgeapp.engine.bench.transport import bench_transport

    result = bench_transport(frames=30, seconds=20, width=160, height=120, rounds=1)
    assert result["pipeline_fps"] > 0 and result["raw_fps"] > 0, result
    assert result["ratio"] == pytest.approx(result["pipeline_fps"] / result["raw_fps"], rel=0.01)
    assert {"mb_per_s", "raw_mb_per_s", "pipeline_fps_rounds"} <= set(result)
