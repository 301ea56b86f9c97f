"""The shared VLM batcher: routing, batching, in-flight cap, deadlines, backpressure, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest

from edgeapp.engine.vlm.backend import Backend
from edgeapp.engine.vlm.batcher import VlmBatcher
from edgeapp.engine.vlm.request import VlmAnswer, VlmRequest
from edgeapp.errors import BackpressureError, BatcherStoppedError, InputError

FRAME = np.zeros((8, 8, 3), np.uint8)


def expected_items(request_id: str) -> dict[str, int]:
    """What EchoBackend answers: ``"s3-17"`` → ``{"s3": 18}``."""
    station, seq = request_id.rsplit("-", 1)
    return {station: int(seq) + 1}


class EchoBackend:
    """A test double for the batcher's own logic: answers from the request id, counts calls.

    ``gate``: every call waits for it (a hung backend until the test sets it);
    ``fail``: calls raise; ``drop``: request ids it leaves without an answer.
    """

    name = "echo"

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None,
                 fail: bool = False, drop: Sequence[str] = ()) -> None:
        self.delay_s, self.gate, self.fail, self.drop = delay_s, gate, fail, set(drop)
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.batches: list[list[str]] = []

    def infer_batch(self, requests: Sequence[VlmRequest]) -> list[VlmAnswer]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.batches.append([r.request_id for r in requests])
        try:
            if self.gate is not None:
                self.gate.wait(30)
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.fail:
                raise RuntimeError("model crashed")
            return [VlmAnswer(r.request_id, expected_items(r.request_id), raw_text=r.request_id)
                    for r in reversed(requests) if r.request_id not in self.drop]
        finally:
            with self.lock:
                self.active -= 1

    def close(self) -> None:
        pass

    @property
    def sizes(self) -> list[int]:
        with self.lock:
            return [len(b) for b in self.batches]


def req(rid: str, timeout_s: float = 10.0) -> VlmRequest:
    now = time.monotonic()
    return VlmRequest(rid, rid.rsplit("-", 1)[0], "925", (FRAME,), deadline=now + timeout_s,
                      created=now)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Answers:
    """A callback that records every answer it gets, by request id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: dict[str, list[VlmAnswer]] = {}

    def __call__(self, answer: VlmAnswer) -> None:
        with self.lock:
            self.got.setdefault(answer.request_id, []).append(answer)

    def once(self, rid: str) -> VlmAnswer:
        with self.lock:
            answers = self.got.get(rid, [])
        assert len(answers) == 1, f"{rid} got {len(answers)} answers"
        return answers[0]


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[VlmBatcher, EchoBackend]]]:
    """Started batchers over EchoBackends; always stopped, hung backends released, no leaks."""
    before = set(threading.enumerate())
    made: list[tuple[VlmBatcher, EchoBackend]] = []

    def _make(backend: EchoBackend | None = None, **kwargs: float) -> tuple[
            VlmBatcher, EchoBackend]:
        backend = backend or EchoBackend()
        assert isinstance(backend, Backend)
        batcher = VlmBatcher(backend, **kwargs)  # type: ignore[arg-type]
        batcher.start()
        made.append((batcher, backend))
        return batcher, backend

    yield _make
    for batcher, backend in made:
        batcher.stop()
        if backend.gate is not None:
            backend.gate.set()
    for batcher, _ in made:
        assert batcher.join(10.0), "batcher threads did not end"
    extra = {t for t in set(threading.enumerate()) - before if t.name.startswith("vlm")}
    assert not extra, f"threads left running: {sorted(t.name for t in extra)}"


def test_every_answer_reaches_its_own_request_under_concurrency(make) -> None:
    # Given 8 stations submitting 20 orders each, one at a time, through a 50 ms window
    batcher, backend = make(EchoBackend(delay_s=0.005), batch_window_ms=50)
    answers = Answers()
    errors: list[str] = []

    def station(s: int) -> None:
        for i in range(20):
            rid = f"s{s}-{i}"
            got = batcher.submit(req(rid), answers).result(timeout=10)
            if got.request_id != rid or got.items != expected_items(rid):
                errors.append(f"{rid} got {got}")

    threads = [threading.Thread(target=station, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    # Then every request got exactly its own answer, once, and requests shared batches
    assert not errors
    for s in range(8):
        for i in range(20):
            answer = answers.once(f"s{s}-{i}")
            assert answer.ok and answer.items == expected_items(answer.request_id)
            assert answer.batch_size >= 1 and answer.latency_s >= answer.queued_s >= 0
    stats = batcher.stats()
    assert stats.answered == stats.submitted == 160
    assert stats.errors == stats.timeouts == 0 and stats.pending == 0
    assert stats.mean_batch_size is not None and stats.mean_batch_size > 1, (
        f"8 concurrent stations never shared a batch: {backend.sizes}")
    assert sum(backend.sizes) == 160


def test_full_batch_goes_at_once_and_never_exceeds_max_batch_size(make) -> None:
    # A 60 s window: only a full batch can explain an answer within the test
    batcher, backend = make(batch_window_ms=60_000, max_batch_size=4)
    handles = [batcher.submit(req(f"s-{i}")) for i in range(8)]
    for h in handles:
        assert h.result(timeout=10).ok
    assert backend.sizes == [4, 4]
    assert batcher.stats().max_batch_size == 4


def test_window_opens_at_the_first_request(make) -> None:
    # A 2 s window: the second request, submitted right after the first, is held for it
    batcher, backend = make(batch_window_ms=2000)
    first = batcher.submit(req("s-1"))
    second = batcher.submit(req("s-2"))  # inside the first request's window
    assert first.result(timeout=10).ok and second.result(timeout=10).ok
    third = batcher.submit(req("s-3"))  # after that batch left: a window of its own
    assert third.result(timeout=10).ok
    assert backend.batches == [["s-1", "s-2"], ["s-3"]]
    assert first.result().batch_size == 2 and third.result().batch_size == 1


def test_in_flight_cap_holds_batches_back(make) -> None:
    gate = threading.Event()
    batcher, backend = make(EchoBackend(gate=gate), batch_window_ms=0, max_batch_size=1,
                            max_in_flight=2)
    handles = [batcher.submit(req(f"s-{i}")) for i in range(6)]
    wait_for(lambda: backend.active == 2, "two backend calls")
    time.sleep(0.2)  # room for a third call, were the cap broken
    stats = batcher.stats()
    assert backend.active == 2 and stats.in_flight_batches == 2
    assert stats.queue_depth == 4, "the other requests must wait in the queue"
    gate.set()
    assert all(h.result(timeout=10).ok for h in handles)
    assert backend.max_active == 2


def test_deadline_ends_a_request_when_the_backend_hangs(make) -> None:
    gate = threading.Event()
    batcher, backend = make(EchoBackend(gate=gate), batch_window_ms=0)
    answers = Answers()
    handle = batcher.submit(req("s-1", timeout_s=0.3), answers)

    answer = handle.result(timeout=10)
    assert answer.error == "timeout" and answer.items is None and not answer.ok
    assert answer.batch_size == 1, "it was sent, then the backend hung"
    assert answers.once("s-1") is answer

    gate.set()  # the backend comes back late: its answer is dropped
    wait_for(lambda: batcher.stats().late_answers == 1, "the late answer")
    assert answers.once("s-1").error == "timeout"
    stats = batcher.stats()
    assert stats.timeouts == 1 and stats.answered == 1 and stats.pending == 0


def test_deadline_ends_a_request_still_waiting_in_the_queue(make) -> None:
    gate = threading.Event()
    batcher, backend = make(EchoBackend(gate=gate), batch_window_ms=0, max_batch_size=1,
                            max_in_flight=1)
    busy = batcher.submit(req("s-1", timeout_s=30))
    wait_for(lambda: backend.active == 1, "the first call")
    queued = batcher.submit(req("s-2", timeout_s=0.2))
    answer = queued.result(timeout=10)
    assert answer.error == "timeout" and answer.batch_size == 0
    gate.set()
    assert busy.result(timeout=10).ok
    time.sleep(0.1)
    assert ["s-2"] not in backend.batches, "an expired request must not be sent"


def test_full_queue_refuses_at_once(make) -> None:
    gate = threading.Event()
    batcher, backend = make(EchoBackend(gate=gate), batch_window_ms=0, max_batch_size=1,
                            max_in_flight=1, queue_size=3)
    handles = [batcher.submit(req("s-0"))]
    wait_for(lambda: backend.active == 1, "the first call")
    handles += [batcher.submit(req(f"s-{i}")) for i in range(1, 4)]

    with pytest.raises(BackpressureError, match="queue is full"):
        batcher.submit(req("s-4"))
    assert batcher.stats().rejected == 1 and batcher.stats().queue_depth == 3

    gate.set()
    assert all(h.result(timeout=10).ok for h in handles)
    assert batcher.submit(req("s-5")).result(timeout=10).ok, "accepts again once drained"


def test_stop_answers_every_pending_request(make) -> None:
    gate = threading.Event()
    batcher, backend = make(EchoBackend(gate=gate), batch_window_ms=0, max_batch_size=1,
                            max_in_flight=1)
    answers = Answers()
    rids = [f"s-{i}" for i in range(5)]
    handles = [batcher.submit(req(rid, timeout_s=60), answers) for rid in rids]
    wait_for(lambda: backend.active == 1, "the first call")

    batcher.stop()
    with pytest.raises(BatcherStoppedError):
        batcher.submit(req("s-9"))
    assert not batcher.join(timeout=0.5), "a backend call is still hung"

    # nothing silently lost: the queued four and the hung one all got "stopped"
    for rid, handle in zip(rids, handles, strict=True):
        assert handle.done() and answers.once(rid).error == "stopped"
    gate.set()
    assert batcher.join(timeout=10)
    stats = batcher.stats()
    assert stats.state == "stopped" and stats.stopped == 5 and stats.late_answers == 1
    assert all(len(answers.got[rid]) == 1 for rid in rids)


def test_stop_lets_a_batch_in_flight_finish(make) -> None:
    batcher, backend = make(EchoBackend(delay_s=0.3), batch_window_ms=0)
    handle = batcher.submit(req("s-1"))
    wait_for(lambda: backend.active == 1, "the call")
    batcher.stop()
    assert batcher.join(timeout=10)
    assert handle.result(timeout=0).items == {"s": 2}


def test_callback_exception_is_contained(make) -> None:
    batcher, _ = make(batch_window_ms=0)

    def boom(answer: VlmAnswer) -> None:
        raise ValueError("station bug")

    first = batcher.submit(req("s-1"), boom)
    assert first.result(timeout=10).ok, "the handle still gets the answer"
    assert batcher.submit(req("s-2")).result(timeout=10).ok
    assert batcher.stats().callback_errors == 1


def test_backend_failures_become_error_answers(make) -> None:
    batcher, backend = make(EchoBackend(fail=True), batch_window_ms=0)
    answer = batcher.submit(req("s-1")).result(timeout=10)
    assert answer.items is None and answer.error == "backend error: RuntimeError: model crashed"
    backend.fail, backend.drop = False, {"s-3"}
    kept, dropped = batcher.submit(req("s-2")), batcher.submit(req("s-3"))
    assert kept.result(timeout=10).ok
    assert dropped.result(timeout=10).error == "backend returned no answer"
    assert batcher.stats().errors == 2


def test_submit_refuses_what_it_cannot_route(make) -> None:
    idle = VlmBatcher(EchoBackend())  # type: ignore[arg-type]
    with pytest.raises(BatcherStoppedError):
        idle.submit(req("s-1"))
    gate = threading.Event()
    batcher, _ = make(EchoBackend(gate=gate))
    batcher.submit(req("s-1"))
    with pytest.raises(InputError, match="already pending"):
        batcher.submit(req("s-1"))
    with pytest.raises(InputError, match="BGR uint8"):
        VlmRequest("s-2", "s", None, (np.zeros((8, 8), np.float32),))


def test_default_timeout_applies_without_a_deadline(make) -> None:
    gate = threading.Event()
    batcher, _ = make(EchoBackend(gate=gate), default_timeout_s=0.2)
    request = VlmRequest.new("s", "925", [FRAME])
    assert request.deadline is None
    assert batcher.submit(request).result(timeout=10).error == "timeout"
