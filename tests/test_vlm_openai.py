"""The OpenAI-compatible VLM backend against a real local chat server; the answer parser."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from ovms_server import OvmsServer, decode_images, image_urls, prompt_text

from edgeapp.engine.api import Severity
from edgeapp.engine.orders.catalog import Catalog, load_catalog
from edgeapp.engine.vlm.batcher import VlmBatcher
from edgeapp.engine.vlm.openai_backend import OpenAiBackend
from edgeapp.engine.vlm.prompt import parse_answer
from edgeapp.engine.vlm.request import VlmAnswer, VlmRequest

ORDER_ID = "102"  # juice x 2, fries x 2, water x 2 in the demo catalogue


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def server() -> Iterator[OvmsServer]:
    before = set(threading.enumerate())
    srv = OvmsServer().start()
    yield srv
    srv.stop()
    deadline = time.monotonic() + 5
    while (extra := {t for t in set(threading.enumerate()) - before
                     if t.name.startswith(("vlm", "ovms"))}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not extra, f"threads left running: {sorted(t.name for t in extra)}"


@pytest.fixture
def backend(server: OvmsServer, catalog: Catalog) -> Iterator[Callable[..., OpenAiBackend]]:
    """OpenAiBackends pointed at the test server (or ``url``); always closed."""
    made: list[OpenAiBackend] = []

    def _make(url: str | None = None, **kwargs: object) -> OpenAiBackend:
        options: dict = {"model_name": "test-vlm", "catalog": catalog, "timeout_s": 10.0,
                         "backoff_s": 0.05}
        options.update(kwargs)
        made.append(OpenAiBackend(url or server.url, **options))
        return made[-1]

    yield _make
    for b in made:
        b.close()


@pytest.fixture
def batcher() -> Iterator[Callable[[OpenAiBackend], VlmBatcher]]:
    made: list[VlmBatcher] = []

    def _make(backend: OpenAiBackend) -> VlmBatcher:
        made.append(VlmBatcher(backend, batch_window_ms=50))
        made[-1].start()
        return made[-1]

    yield _make
    for b in made:
        b.stop()
        assert b.join(15), "batcher did not stop"


def frames(n: int, width: int = 1280, height: int = 720) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(n)
    return tuple(rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(n))


def request(rid: str, n_frames: int = 1, timeout_s: float = 20.0) -> VlmRequest:
    now = time.monotonic()
    return VlmRequest(rid, "station-1", ORDER_ID, frames(n_frames), deadline=now + timeout_s,
                      created=now)


def ask(backend: OpenAiBackend, text: str | None, server: OvmsServer) -> VlmAnswer:
    if text is not None:
        server.answer = lambda body: text
    return backend.infer_one(request("r-1"))


# ── through the batcher, against the real server ─────────────────────────────────────────


def test_batch_is_answered_per_request_and_the_prompt_is_right(
        server, backend, batcher, catalog) -> None:
    # Given a server that answers "burger x N" for N images, and requests of 1, 2, 3 frames
    vlm = batcher(backend(max_image_side=768))
    handles = {n: vlm.submit(request(f"r-{n}", n_frames=n)) for n in (1, 2, 3)}

    # Then each request gets the answer to its own frames
    for n, handle in handles.items():
        answer = handle.result(timeout=30)
        assert answer.ok and answer.items == {"burger": n}, answer
        assert answer.raw_text == f"burger x {n}"

    # And each POST carried the rules, the whole inventory, the frames — and not the order
    assert len(server.calls) == 3
    for call in server.calls:
        body = call.body
        assert call.path == "/v3/chat/completions"
        assert body["model"] == "test-vlm" and body["temperature"] == 0
        assert 0 < body["max_tokens"] <= 512
        assert body["messages"][0]["role"] == "system"
        text = prompt_text(body)
        for item in catalog.items:
            assert item.name in text and all(alias in text for alias in item.aliases)
        assert "NO_ITEMS" in text and "x quantity" in text
        assert ORDER_ID not in text, "the order id must not be in the prompt"
        assert "juice x 2" not in text and "quantity: 2" not in text
        images = decode_images(body)
        assert len(images) in (1, 2, 3)
        assert all(img.shape == (432, 768, 3) for img in images), "long side resized to 768"
    assert sorted(len(image_urls(c.body)) for c in server.calls) == [1, 2, 3]


def test_requests_of_a_batch_overlap_and_reuse_connections(server, backend) -> None:
    server.delay_s = 0.3
    vlm = backend()
    answers = vlm.infer_batch([request(f"r-{i}") for i in range(4)])
    assert [a.request_id for a in answers] == [f"r-{i}" for i in range(4)]
    assert all(a.ok for a in answers)
    assert server.max_active >= 2, "a batch's requests must be in flight together"
    vlm.infer_batch([request(f"q-{i}") for i in range(4)])
    assert len(server.calls) == 8
    assert server.connections <= 4, "kept-alive connections must be reused"


def test_slow_server_ends_as_timeout_at_the_deadline(server, backend, batcher) -> None:
    server.delay_s = 30.0
    vlm = batcher(backend())
    answer = vlm.submit(request("r-1", timeout_s=0.5)).result(timeout=20)
    assert answer.error == "timeout" and answer.items is None
    # the backend gives up at the same deadline, so the slot frees and nothing is late forever
    from_backend = backend(timeout_s=0.3).infer_one(request("r-2"))
    assert from_backend.error == "timeout"


def test_v1_api_path(server, backend) -> None:
    answer = backend(api_path="/v1/chat/completions").infer_one(request("r-1"))
    assert answer.items == {"burger": 1}
    assert server.calls[-1].path == "/v1/chat/completions"


# ── failures ─────────────────────────────────────────────────────────────────────────────


def test_server_down_is_unreachable_after_retries(server, backend) -> None:
    url = server.url
    server.stop()
    answer = backend(url, retries=2).infer_one(request("r-1"))
    assert answer.items is None
    assert answer.error is not None and answer.error.startswith("server unreachable: ")
    assert "refused" in answer.error.lower()


def test_500_then_ok_is_retried(server, backend) -> None:
    server.fail_first = 2
    answer = backend(retries=2).infer_one(request("r-1"))
    assert answer.ok and answer.items == {"burger": 1}
    assert len(server.calls) == 3


def test_500_beyond_the_retries_is_an_http_error(server, backend) -> None:
    server.fail_first = 10
    answer = backend(retries=1).infer_one(request("r-1"))
    assert answer.error is not None and answer.error.startswith("http error 500")
    assert len(server.calls) == 2


def test_4xx_is_not_retried(server, backend) -> None:
    server.mode, server.status_code = "status", 400
    answer = backend(retries=2).infer_one(request("r-1"))
    assert answer.error is not None and answer.error.startswith("http error 400")
    assert len(server.calls) == 1


@pytest.mark.parametrize("mode", ["garbage", "wrong_shape"])
def test_garbage_response(server, backend, mode) -> None:
    server.mode = mode
    answer = backend().infer_one(request("r-1"))
    assert answer.items is None and answer.error == "garbage response"
    assert answer.raw_text, "the body is kept for diagnosis"


def test_empty_answer(server, backend) -> None:
    server.mode = "empty"
    answer = backend().infer_one(request("r-1"))
    assert answer.items is None and answer.error == "empty answer"


def test_unparseable_answer(server, backend) -> None:
    answer = ask(backend(), "I am not sure what is in the bag.", server)
    assert answer.items is None and answer.error == "unparseable answer"
    assert answer.raw_text == "I am not sure what is in the bag."


# ── answers mapped to the inventory ──────────────────────────────────────────────────────


def test_aliases_plurals_and_unknown_names(server, backend) -> None:
    text = "Here is what I see:\n- 2 x Hamburgers\n* coke: 1\n- napkin x 3\n"
    answer = ask(backend(), text, server)
    assert answer.ok and answer.items == {"burger": 2, "cola": 1}
    assert answer.unknown == ("napkin",)
    assert answer.raw_text == text


def test_no_items(server, backend) -> None:
    answer = ask(backend(), "NO_ITEMS", server)
    assert answer.ok and answer.items == {}


@pytest.mark.parametrize(("text", "items"), [
    ("burger x 2\ncola x 1", {"burger": 2, "cola": 1}),
    ("- burger x 2\n- fries x 1", {"burger": 2, "fries": 1}),
    ("1. 2 x burger\n2) 1 x fries", {"burger": 2, "fries": 1}),
    ("burger x2", {"burger": 2}),
    ("Burger ×2", {"burger": 2}),
    ("burger: 2", {"burger": 2}),
    ("BURGERS x 3", {"burger": 3}),
    ("coke x 1\nsoda x 1", {"cola": 2}),
    ("French Fries - 2", {"fries": 2}),
    ("**Fries** x 3 (in the bag)", {"fries": 3}),
    ("```\nsandwiches x 2\n```", {"sandwich": 2}),
    ("two hot dogs", {"hotdog": 2}),
    ("a cup of coffee", {"coffee": 1}),
    ("nugget (x2)", {"nuggets": 2}),
    ("Items:\nburger x 1\nTotal: 1", {"burger": 1}),
    ("<think>maybe burger x 9</think>\nburger x 1", {"burger": 1}),
    ("burger x 0", {}),
    ("NO_ITEMS", {}),
    ("```\nNO_ITEMS\n```", {}),
])
def test_parser_tolerates_how_models_write(catalog, text, items) -> None:
    parsed = parse_answer(text, catalog)
    assert parsed.error is None and parsed.items == items, parsed


@pytest.mark.parametrize(("text", "error"), [
    ("", "empty answer"),
    ("   \n ", "empty answer"),
    (None, "empty answer"),
    ("```\n```", "empty answer"),
    ("The bag is closed, I cannot see inside.", "unparseable answer"),
])
def test_parser_reports_what_it_cannot_read(catalog, text, error) -> None:
    parsed = parse_answer(text, catalog)
    assert parsed.items is None and parsed.error == error


# ── the operator hears of it once ────────────────────────────────────────────────────────


def test_the_operator_is_told_once_when_the_vlm_stops_answering_and_once_when_it_is_back(
        server, backend) -> None:
    # Given a batcher that publishes notifications, in front of a working server
    notes: list = []
    vlm = VlmBatcher(backend(retries=0), batch_window_ms=0, default_timeout_s=20.0,
                     publish=notes.append)
    vlm.start()

    def orders(n: int, timeout_s: float = 20.0) -> list[VlmAnswer]:
        return [vlm.submit(request(f"r-{time.monotonic_ns()}", timeout_s=timeout_s))
                .result(timeout=30) for _ in range(n)]

    try:
        assert all(a.items for a in orders(2)) and notes == [], "a working VLM says nothing"

        # When it answers garbage for three orders, then is down for three
        server.mode = "garbage"
        assert all(a.items is None for a in orders(3))
        url = server.url
        server.stop()
        assert all(a.items is None for a in orders(3))
        # Then each failure was told once, naming what is wrong
        assert [(n.severity, n.part) for n in notes] == [(Severity.ERROR, "vlm")] * 2, notes
        assert notes[0].text.startswith("VLM server answers garbage"), notes[0]
        assert notes[1].text.startswith("VLM server unreachable") and url in notes[1].text

        # When it is back, then that is told once, with the orders that failed meanwhile
        server.mode = "normal"
        server.start()
        assert all(a.items for a in orders(2))
        assert len(notes) == 3 and notes[2].severity is Severity.INFO, notes
        assert notes[2].text == "VLM answers again (6 orders failed meanwhile)", notes[2]

        # When it hangs past the deadline, then "timing out" is told once, and its end
        server.delay_s = 30.0
        assert all(a.error == "timeout" for a in orders(2, timeout_s=0.3))
        server.delay_s = 0.0
        assert all(a.items for a in orders(1))
        assert [n.text.split(":")[0] for n in notes[3:]] == [
            "VLM timing out", "VLM answers again (2 orders failed meanwhile)"], notes
    finally:
        vlm.stop()
        assert vlm.join(15)
