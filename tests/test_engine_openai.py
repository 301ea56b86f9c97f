"""A successful verdict through the Engine from an OpenAI-compatible VLM server.

The server is real HTTP on loopback speaking chat-completions (tests/ovms_server.py). It
answers from what it sees, never from the truth: it decodes the JPEG image parts of each
request and runs the shipped s detector on them (as the `local` backend would), then
answers in the prompt's format. The engine knows nothing of that: it posts frames, parses
text, validates.
"""

from __future__ import annotations

import threading
from typing import Any

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
from engine_helpers import EventLog, engine_config, engine_threads, short_dir, truth_orders
from ovms_server import OvmsServer, decode_images, prompt_text

from edgeapp.engine.engine import Engine
from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderStatus
from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vlm.local_backend import LocalBackend
from edgeapp.engine.vlm.request import VlmRequest

SEED, WRONG = 12, 0.5  # its first four orders: two packed right, two wrong


class DetectorVlm:
    """The server's brain: the shipped s model on the decoded images, answered as text."""

    def __init__(self) -> None:
        self.backend = LocalBackend(Detector(), load_catalog(), grade="medium")
        self.items: list[dict[str, int]] = []  # what it answered, per request
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        assert "Inventory" in prompt_text(body), "the prompt lists the inventory"
        images = tuple(decode_images(body))
        (answer,) = self.backend.infer_batch([VlmRequest("q", "server", None, images)])
        assert answer.raw_text is not None
        text = "Here is what I see:\n" + "\n".join(f"- {line}"
                                                    for line in answer.raw_text.splitlines())
        assert answer.items is not None
        with self.lock:
            self.items.append(answer.items)
        return text


def test_verdicts_from_an_openai_compatible_server_that_looks_at_the_frames():
    # Given a chat-completions server that answers from the images it is sent, and an engine
    # judging with the openai backend; half of the orders are packed wrong
    vlm = DetectorVlm()
    root = short_dir()
    truth = truth_orders(SEED, WRONG)
    try:
        with OvmsServer() as server:
            server.answer = vlm
            config = engine_config(root, [{"name": "cam", "seed": SEED, "wrong_order_rate": WRONG}],
                                   vlm={"backend": "openai", "url": server.url,
                                        "api_path": "/v1/chat/completions",
                                        "model_name": "detector-vlm", "timeout_s": 30.0})
            log = EventLog()
            engine = Engine(config)
            engine.subscribe(log)
            engine.start()
            try:
                # When four orders have been judged
                log.wait(lambda: len(log.results()) >= 4, 180, "four verdicts")
            finally:
                engine.stop(timeout=30)
            calls = list(server.calls)
    finally:
        vlm.backend.close()
    assert not engine_threads(), engine_threads()

    # Then every order was asked about over HTTP with its frames, in the configured model's
    # name, and every verdict is the server's answer validated against the order
    results = log.results()
    assert len(calls) == len(results), (calls, results)
    assert all(c.body["model"] == "detector-vlm" and len(decode_images(c.body)) == 2
               for c in calls)
    assert all(r.status in (OrderStatus.VALIDATED, OrderStatus.MISMATCH) for r in results), \
        results
    assert sorted(sorted(r.detected_items.items()) for r in results) == sorted(
        sorted(items.items()) for items in vlm.items), "each verdict holds the server's answer"
    for r in results:
        assert (r.status is OrderStatus.VALIDATED) == (r.detected_items == r.expected_items), r

    # ... and where the server saw what was packed (most orders: it sees the frames the
    # station chose), the verdict is the right one, with the right differences
    exact = [r for r in results if r.detected_items == truth[r.order_id].packed]
    assert len(exact) >= len(results) - 1, [(r, truth[r.order_id]) for r in results]
    for r in exact:
        t = truth[r.order_id]
        assert r.status.value == t.verdict and r.truth_correct, (r, t)
        assert set(r.missing) == set(t.expected) - set(t.packed), r
        assert set(r.extra) == set(t.packed) - set(t.expected), r
    assert {r.status.value for r in exact} == {"validated", "mismatch"}, \
        "the scenario has right and wrong orders among the first ones"
