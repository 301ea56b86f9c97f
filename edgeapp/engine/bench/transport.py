"""``edgeapp bench transport``: does the Work-API move full-HD frames nearly as fast as raw ZeroMQ?

Two figures, measured in the same run, interleaved round by round (the machine may be shared,
so both kinds see the same background load):

- *pipeline*: ``Producer.submit`` → ROUTER → a real worker process (``NoopProcessor``) → PUSH
  → ``Collector`` → subscriber, with the Producer's batching and the worker's prefetch.
- *raw*: a sender process pushes the same frames as header + raw buffer (``copy=False``) to a
  PULL socket here, which wraps each one with ``np.frombuffer`` — the least any transport of
  these frames across a process boundary can do.

``ratio = pipeline_fps / raw_fps`` (goal: >= 0.8). Each figure is the median over ``rounds``;
the first frames of every round warm up and are not timed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[3]


def bench_transport(frames: int = 200, seconds: float = 20.0, width: int = 1920,
                    height: int = 1080, rounds: int = 3, batch_size: int = 4,
                    prefetch: int = 2) -> dict[str, Any]:
    """Measure pipeline and raw frames per second; see the module docstring."""
    from edgeapp.engine.distributed.collector import Collector
    from edgeapp.engine.distributed.producer import Producer

    frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    warmup = max(2 * batch_size, 4)
    frames = max(frames, warmup + 10)
    window = batch_size * (prefetch + 2)
    collector = Collector(reorder_timeout_s=5.0)
    collector.start()
    producer = Producer(work_type="NONE", batch_size=batch_size, queue_size=2 * window,
                        heartbeat_s=1.0, lease_s=60.0)
    producer.attach_collector(collector)
    producer.start()
    worker = _spawn(["-m", "edgeapp.engine.distributed.worker", "--connect", str(producer.address),
                     "--processor", "noop", "--prefetch", str(prefetch)])
    raw_fps: list[float] = []
    pipe_fps: list[float] = []
    try:
        _wait(lambda: bool(producer.status()["workers"]), 30, "the worker to register")
        for r in range(rounds):
            raw_fps.append(_raw_round(frame, frames, warmup, seconds))
            pipe_fps.append(_pipeline_round(producer, collector, frame, f"bench-{r}", frames,
                                            warmup, window, seconds))
    finally:
        producer.stop()
        producer.join(10)
        collector.stop()
        collector.join(10)
        _end(worker)
    frame_mb = frame.nbytes / 1e6
    pipeline, raw = statistics.median(pipe_fps), statistics.median(raw_fps)
    return {
        "pipeline_fps": round(pipeline, 1), "raw_fps": round(raw, 1),
        "ratio": round(pipeline / raw, 3) if raw else None,
        "mb_per_s": round(pipeline * frame_mb, 1), "raw_mb_per_s": round(raw * frame_mb, 1),
        "frame": f"{width}x{height}x3 uint8", "frames_per_round": frames, "rounds": rounds,
        "batch_size": batch_size, "prefetch": prefetch,
        "pipeline_fps_rounds": [round(x, 1) for x in pipe_fps],
        "raw_fps_rounds": [round(x, 1) for x in raw_fps],
    }


def _pipeline_round(producer: Any, collector: Any, frame: np.ndarray, key: str, frames: int,
                    warmup: int, window: int, seconds: float) -> float:
    """Frames/s through Producer → worker process → Collector, at most ``window`` in flight."""
    slots = threading.Semaphore(window)
    times: list[float] = []

    def delivered(result: Any) -> None:
        if result.stream_key == key:
            times.append(time.perf_counter())
            slots.release()

    unsubscribe = collector.subscribe(delivered)
    deadline = time.monotonic() + seconds
    try:
        sent = 0
        while sent < frames and slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            producer.submit(key, sent, frame)
            sent += 1
        _wait(lambda: len(times) >= sent, max(0.0, deadline - time.monotonic()), None)
    finally:
        unsubscribe()
    return _rate(times, warmup)


def _raw_round(frame: np.ndarray, frames: int, warmup: int, seconds: float) -> float:
    """Frames/s of a bare PUSH (another process) → PULL (here) loop of the same frames."""
    import zmq

    from edgeapp.engine.distributed import protocol as p

    limits = p.Limits(max_array_bytes=frame.nbytes)
    times: list[float] = []
    with zmq.Context() as ctx, ctx.socket(zmq.PULL) as pull:
        pull.linger = 0
        pull.rcvhwm = 16
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        sender = _spawn(["-m", "edgeapp.engine.bench.transport", "--raw-sender",
                         f"tcp://127.0.0.1:{port}", str(frames), str(frame.shape[1]),
                         str(frame.shape[0])])
        try:
            deadline = time.monotonic() + seconds + 10  # + the sender's start
            while len(times) < frames and time.monotonic() < deadline:
                if not pull.poll(100):
                    continue
                meta_part, data = pull.recv_multipart(copy=False)
                image = p.decode_array(p.unpack_meta(meta_part, limits), data, limits)
                assert image.shape == frame.shape
                times.append(time.perf_counter())
        finally:
            _end(sender)
    return _rate(times, warmup)


def _raw_sender(address: str, frames: int, width: int, height: int) -> None:
    """The raw loop's other process: push ``frames`` frames as header + raw buffer."""
    import zmq

    from edgeapp.engine.distributed import protocol as p

    frame = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
        push.sndhwm = 16
        push.connect(address)
        for seq in range(frames):
            push.send_multipart(p.array_parts(frame, id=seq, stream_key="raw", seq=seq),
                                copy=False)
        push.linger = 10_000


def _rate(times: list[float], warmup: int) -> float:
    if len(times) <= warmup + 1:
        return 0.0
    return (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _end(proc: subprocess.Popen) -> None:
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait(condition: Any, timeout: float, what: str | None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if what is None:
                return
            raise TimeoutError(f"bench transport: timed out waiting for {what}")
        time.sleep(0.005)


def add_arguments(parser: Any) -> None:
    """CLI options of ``edgeapp bench transport``."""
    parser.add_argument("--frames", type=int, default=200, help="frames per round and kind")
    parser.add_argument("--seconds", type=float, default=20.0, help="cap per round and kind")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=2)


def run_transport_bench(args: Any) -> dict[str, Any]:
    """``edgeapp bench transport``."""
    return bench_transport(args.frames, args.seconds, args.width, args.height, args.rounds,
                           args.batch_size, args.prefetch)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw-sender"]:
        _raw_sender(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        import json

        print(json.dumps(bench_transport()))
