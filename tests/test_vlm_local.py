"""The local VLM backend: real OpenVINO on the shipped model, frames of the synthetic camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest

from edgeapp import paths
from edgeapp.config import Config, config_from_dict
from edgeapp.engine.bench.batcher import order_frames
from edgeapp.engine.orders.catalog import Catalog, Item, load_catalog
from edgeapp.engine.orders.validator import validate
from edgeapp.engine.sources.synthetic import OrderTruth, SyntheticScene
from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vision.models import installed_models
from edgeapp.engine.vlm.batcher import VlmBatcher
from edgeapp.engine.vlm.factory import make_backend
from edgeapp.engine.vlm.local_backend import LocalBackend
from edgeapp.engine.vlm.openai_backend import OpenAiBackend
from edgeapp.engine.vlm.prompt import NO_ITEMS, parse_answer
from edgeapp.engine.vlm.request import TIMEOUT, VlmAnswer, VlmRequest
from edgeapp.errors import ConfigError

Order = tuple[list[np.ndarray], OrderTruth]


class CountingDetector(Detector):
    """The real detector; remembers how many frames each ``detect_batch`` call got."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[int] = []
        self._calls_lock = threading.Lock()

    def detect_batch(self, images, input_size=None):  # type: ignore[no-untyped-def]
        with self._calls_lock:
            self.calls.append(len(images))
        return super().detect_batch(images, input_size)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def detector() -> Iterator[CountingDetector]:
    """The detector as ``LocalBackend.from_config`` opens it for the default config."""
    models = Config().models
    with CountingDetector(installed_models([models.path]), conf=models.conf_threshold,
                          iou=models.iou_threshold) as d:
        yield d


@pytest.fixture(scope="module")
def backend(detector: CountingDetector, catalog: Catalog) -> LocalBackend:
    """The backend at its default grade; the ``detector`` fixture closes the model."""
    return LocalBackend(detector, catalog)


# The orders of the ``orders`` fixture the default local judge (the s model) gets wrong, by
# index: seed 1's order 172 (two coffees, a burger, a sandwich), where one coffee cup is read as
# a cola: the demo's typical miss (see the README's demo figures). 23 of 24 are right.
KNOWN_MISSES = {5: "order 172: one of two coffees read as a cola"}


@pytest.fixture(scope="module")
def orders(catalog: Catalog) -> list[Order]:
    """24 packed orders (6 cameras x 4), 3 full-bag frames each, with their truth."""
    return [o for seed in range(6) for o in order_frames(catalog, seed=seed, orders=4, k=3)]


def request(frames: Sequence[np.ndarray], station: str = "station-1",
            timeout_s: float = 30.0) -> VlmRequest:
    return VlmRequest.new(station, None, frames, timeout_s=timeout_s)


def new_calls(detector: CountingDetector, before: int) -> list[int]:
    return detector.calls[before:]


def packing_frames(catalog: Catalog, seed: int) -> tuple[np.ndarray, np.ndarray, OrderTruth]:
    """(a frame with one item in the bag, a frame with all of them, the order's truth)."""
    scene = SyntheticScene(catalog, seed=seed)
    partial = None
    while True:
        order, truth = scene.orders[-1], scene.truth()
        placed = len(truth.classes) - 1 if truth.order_id else -1  # the ticket is one box
        if placed == 1 and not truth.hand and partial is None:
            partial = scene.render()[0]
        elif placed == sum(order.packed.values()) and not truth.hand and partial is not None:
            return partial, scene.render()[0], order
        else:
            scene.skip()


# ── what it answers ──────────────────────────────────────────────────────────────────────


def test_default_grade_is_medium_and_the_model_is_named(backend, detector) -> None:
    assert backend.grade is Grade.MEDIUM and backend.name == "local"
    assert backend.model == detector.grades.models[Grade.MEDIUM].name == "yolo11s-demo"
    assert backend.fallback is None, "s is shipped: MEDIUM is served by its own model"
    assert backend.model in detector.loaded_models


def test_packed_orders_get_their_items_and_quantities(backend, detector, orders) -> None:
    # Given 24 orders of 3 frames; when they go as one batch
    before = len(detector.calls)
    answers = backend.infer_batch([request(frames) for frames, _ in orders])

    # then the detector ran once on all 72 frames, and each answer is its own order's bag
    assert new_calls(detector, before) == [72], "one detector call for the whole batch"
    assert all(a.ok for a in answers)
    exact = sum(a.items == truth.packed for a, (_, truth) in zip(answers, orders, strict=True))
    units = sum(sum(truth.packed.values()) for _, truth in orders)
    wrong = sum(abs(a.items.get(name, 0) - truth.packed.get(name, 0))
                for a, (_, truth) in zip(answers, orders, strict=True)
                for name in set(a.items) | set(truth.packed))
    # The demo model (grade n) gets 17 of 24 exact and 11 of 111 units wrong here; a sum over
    # frames, a shifted class map or a lost request would get almost none right.
    assert exact >= 14, f"only {exact} of {len(orders)} orders exactly right"
    assert wrong <= 0.15 * units, f"{wrong} of {units} item units wrong"
    for a in answers:
        assert "ticket" not in a.items and "ticket" not in a.unknown
        assert a.unknown == ()  # every class of the demo model is in the demo inventory


def test_quantity_is_the_most_seen_in_one_frame_not_the_sum(backend, catalog) -> None:
    partial, full, truth = packing_frames(catalog, seed=3)
    one_full = backend.infer_batch([request([full])])[0]
    assert one_full.items, "the full bag shows items"

    thrice = backend.infer_batch([request([full, full, full])])[0]
    assert thrice.items == one_full.items, "three views of one bag are not three bags"

    one_partial = backend.infer_batch([request([partial])])[0]
    both = backend.infer_batch([request([partial, full])])[0]
    names = set(one_partial.items) | set(one_full.items)
    assert both.items == {n: max(one_partial.items.get(n, 0), one_full.items.get(n, 0))
                          for n in names}
    assert sum(one_partial.items.values()) < sum(one_full.items.values()), (
        f"the partial frame should show fewer items; order {truth.packed}")


def test_counts_per_frame_from_boxes(backend) -> None:
    burger, cola, ticket = 0, 2, 12  # the demo model's classes

    def frame(*classes: int) -> np.ndarray:
        # side by side, so no box overlaps another
        return np.array([[100 * i, 0, 100 * i + 80, 80, 0.9, c] for i, c in enumerate(classes)],
                        np.float32).reshape(-1, 6)

    items, unknown = backend.count_items([frame(burger, burger, ticket), frame(burger, cola)])
    assert items == {"burger": 2, "cola": 1} and unknown == {}

    # one box that the model also called cola is one object: the more confident class counts
    same = np.array([[0, 0, 80, 80, 0.9, burger], [1, 1, 80, 80, 0.6, cola]], np.float32)
    assert backend.count_items([same]) == ({"burger": 1}, {})

    # half a burger boxed inside the whole one is not a second burger (its IoU with the whole
    # is 0.5, which per-class NMS keeps); two burgers side by side, overlapping, are two
    part = np.array([[0, 0, 80, 80, 0.95, burger], [0, 0, 40, 80, 0.6, burger]], np.float32)
    assert backend.count_items([part]) == ({"burger": 1}, {})
    two = np.array([[0, 0, 80, 80, 0.95, burger], [50, 0, 130, 80, 0.9, burger]], np.float32)
    assert backend.count_items([two]) == ({"burger": 2}, {})

    # a faint box (the counter's corner read as an item at 0.25) is not an item
    faint = np.array([[0, 0, 80, 80, 0.95, burger], [200, 0, 300, 40, 0.25, cola]], np.float32)
    assert backend.count_items([faint]) == ({"burger": 1}, {})


def test_inventory_names_aliases_and_unknown_classes(detector) -> None:
    # An inventory that calls the burger "hamburger" (alias "burger") and has no cola.
    shop = Catalog((Item("1", "hamburger", "food", ("burger",)), Item("2", "fries", "food")), {})
    # shares the module's detector: not closed here, the detector fixture closes it
    local = LocalBackend(detector, shop)
    boxes = np.array([[0, 0, 80, 80, 0.9, 0], [100, 0, 180, 80, 0.8, 2],
                      [200, 0, 280, 80, 0.8, 1], [300, 0, 380, 80, 0.9, 12]], np.float32)
    items, unknown = local.count_items([boxes])
    assert items == {"hamburger": 1, "fries": 1}
    assert unknown == {"cola": 1}, "a class the inventory does not know is reported, not dropped"

    parsed = parse_answer(
        local.infer_batch([request([np.zeros((720, 1280, 3), np.uint8)])])[0].raw_text, shop)
    assert parsed.items == {}


def test_no_detections_is_an_empty_item_list(backend, catalog) -> None:
    empty_counter = SyntheticScene(catalog, seed=5).render()[0]  # before the first order
    grey = np.full((720, 1280, 3), 128, np.uint8)
    for answer in backend.infer_batch([request([empty_counter]), request([grey, grey])]):
        assert answer.ok and answer.items == {} and answer.unknown == ()
        assert answer.raw_text == NO_ITEMS


def test_raw_text_reads_back_as_the_same_answer(backend, catalog, orders) -> None:
    answer = backend.infer_batch([request(orders[0][0])])[0]
    parsed = parse_answer(answer.raw_text, catalog)
    assert parsed.items == answer.items and parsed.unknown == answer.unknown


def test_expired_request_fails_without_being_run(backend, detector, orders) -> None:
    frames = orders[0][0]
    expired = VlmRequest("s1-late", "station-1", None, tuple(frames),
                         deadline=time.monotonic() - 0.01)
    live = request(frames)

    before = len(detector.calls)
    late, ok = backend.infer_batch([expired, live])
    assert late == VlmAnswer.failed("s1-late", TIMEOUT)
    assert ok.ok and ok.request_id == live.request_id
    assert new_calls(detector, before) == [3], "only the live request's frames were detected"

    before = len(detector.calls)
    assert backend.infer_batch([expired])[0].error == TIMEOUT
    assert new_calls(detector, before) == []


def test_calls_from_several_threads_get_their_own_answers(backend, orders) -> None:
    chunks = [orders[i:i + 1] for i in range(4)]
    alone = [[a.items for a in backend.infer_batch([request(f) for f, _ in c])] for c in chunks]
    got: dict[int, list[dict[str, int] | None]] = {}

    def call(i: int) -> None:
        got[i] = [a.items for a in backend.infer_batch([request(f) for f, _ in chunks[i]])]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [got.get(i) for i in range(len(chunks))] == alone


# ── through the batcher ──────────────────────────────────────────────────────────────────


def test_a_batch_of_requests_is_one_detector_call(backend, detector, orders) -> None:
    # Given six stations that each submit one order at the same moment
    before = len(detector.calls)
    with VlmBatcher(backend, batch_window_ms=500, max_batch_size=16, max_in_flight=1) as b:
        handles = [b.submit(request(frames, f"station-{i}")) for i, (frames, _) in
                   enumerate(orders[:6])]
        answers = [h.result(60) for h in handles]
    # then one backend batch held all six, and the detector ran once on their 18 frames
    assert new_calls(detector, before) == [18]
    assert [a.batch_size for a in answers] == [6] * 6
    assert all(a.ok for a in answers)


def test_end_to_end_stations_get_their_own_verdicts(backend, detector, catalog,
                                                    orders) -> None:
    # Given 8 station threads, 3 orders each, on the batcher as the config sets it up
    cfg = Config().vlm
    work = {f"station-{i + 1}": orders[3 * i:3 * i + 3] for i in range(8)}
    alone = {id(frames): a.items for (frames, _), a in
             zip(orders, backend.infer_batch([request(f) for f, _ in orders]), strict=True)}
    results: dict[str, list[tuple[VlmAnswer, Order]]] = {s: [] for s in work}
    lock = threading.Lock()
    before = len(detector.calls)

    with VlmBatcher(backend, batch_window_ms=cfg.batch_window_ms,
                    max_batch_size=cfg.max_batch_size, max_in_flight=cfg.max_in_flight) as b:

        def station(name: str) -> None:
            for order in work[name]:
                answer = b.submit(request(order[0], name)).result(60)
                with lock:
                    results[name].append((answer, order))

        threads = [threading.Thread(target=station, args=(s,)) for s in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    # then every station got one answer per order, its own, the same as in any batch
    calls = new_calls(detector, before)
    assert sum(calls) == 72 and len(calls) < 24, f"requests were batched: {calls}"
    index = {id(frames): i for i, (frames, _) in enumerate(orders)}
    wrong: dict[int, str] = {}
    for name, got in results.items():
        assert len(got) == 3
        for answer, (frames, truth) in got:
            assert answer.request_id.startswith(name + "-") and answer.ok
            assert answer.items == alone[id(frames)]
            result = validate(truth.order_id, truth.expected, answer.items, catalog,
                              station_id=name, num_frames=len(frames),
                              truth_verdict=truth.verdict)
            if not result.truth_correct:
                wrong[index[id(frames)]] = (f"order {truth.order_id}: packed {truth.packed}, "
                                            f"seen {answer.items}")
    # ... and every verdict is the right one but the scenario's one known miss: the accuracy
    # of this fixed, seeded scenario cannot drift without this test saying which order moved
    assert sorted(wrong) == sorted(KNOWN_MISSES), (
        f"wrong verdicts {wrong}; expected only {KNOWN_MISSES} (update KNOWN_MISSES, with "
        "the reason, when the models get better)")


# ── the second look ──────────────────────────────────────────────────────────────────────


def test_a_count_that_disagrees_with_the_ticket_gets_a_second_look_by_a_better_model(
        detector, catalog, orders) -> None:
    # Given the default judge (s) with the m model for its second look
    models = Config().models
    confirm = CountingDetector(installed_models([models.path]), conf=models.conf_threshold,
                               iou=models.iou_threshold)
    backend = LocalBackend(detector, catalog, confirm=confirm, confirm_grade="high")
    assert backend.confirm_model == "yolo11m-demo"
    # camera 21's third order, two coffees, a juice and three salads: the s judge reads both
    # coffee cups as cola (its most frequent confusion), the m model does not
    miss, miss_truth = order_frames(catalog, seed=21, orders=4, k=3)[2]
    (right, right_truth), (wrong, wrong_truth) = orders[4], orders[1]  # wrong: an extra item
    assert (miss_truth.verdict, right_truth.verdict, wrong_truth.verdict) == (
        "validated", "validated", "mismatch")
    first_look = backend.count_items(detector.detect_batch(miss))[0]
    assert first_look == {"salad": 3, "juice": 1, "cola": 2} != miss_truth.packed
    before, before_m = len(detector.calls), len(confirm.calls)

    # When it judges that bag for its order, a bag it reads right, a bag packed wrong, and
    # the first bag again for an order nobody could read
    answers = backend.infer_batch([
        VlmRequest.new("s1", miss_truth.order_id, miss, timeout_s=60),
        VlmRequest.new("s2", right_truth.order_id, right, timeout_s=60),
        VlmRequest.new("s3", wrong_truth.order_id, wrong, timeout_s=60),
        VlmRequest.new("s4", None, miss, timeout_s=60)])

    # Then the judge looked at all four at once, the m model only at the two bags whose
    # count disagreed with their ticket, and its count is the answer: the misread bag is
    # right now, and the bag packed wrong is still seen as packed (a mismatch)
    assert new_calls(detector, before) == [12]
    assert confirm.calls[before_m:] == [6] and backend.second_looks == 2
    assert answers[0].items == miss_truth.packed, (answers[0], miss_truth)
    assert parse_answer(answers[0].raw_text, catalog).items == miss_truth.packed
    assert answers[1].items == right_truth.packed
    assert answers[2].items == wrong_truth.packed != wrong_truth.expected
    assert answers[3].items == first_look, "no order to compare with: one look"
    confirm.close()  # (the module's detector fixture closes the judge's)


def test_no_second_look_without_a_model_above_the_judges(catalog, caplog) -> None:
    models = Config().models
    judge = Detector(installed_models([models.path]))
    confirm = Detector(installed_models([models.path]))
    backend = LocalBackend(judge, catalog, grade="medium", confirm=confirm,
                           confirm_grade="medium")
    try:
        assert backend.confirm is None and backend.confirm_model is None
        assert "no second look" in caplog.text
        assert confirm.loaded_models == [], "the unused detector was closed"
    finally:
        backend.close()


# ── building it ──────────────────────────────────────────────────────────────────────────


def test_a_judge_grade_without_its_model_is_served_by_another_and_says_so(catalog,
                                                                          orders) -> None:
    # Given a detector over a folder with the n model only (with the shipped s and m
    # installed, as here, the config path cannot make this happen: those serve MEDIUM / HIGH)
    only_n = paths.shipped_models_dir() / "yolo11n-demo"

    # When the local judge is asked for HIGH
    backend = LocalBackend(Detector(only_n), catalog, grade="high")
    try:
        # Then it names the model that really serves HIGH and says why
        assert backend.grade is Grade.HIGH and backend.model == "yolo11n-demo"
        assert backend.fallback is not None and "HIGH" in backend.fallback, backend.fallback
        assert "yolo11n-demo" in backend.fallback
        # ... and it still judges: the n model sees the packed items of an order (this one;
        # it reads order 0's cola as a coffee, which the s model does not)
        frames, truth = orders[1]
        (answer,) = backend.infer_batch([request(frames)])
        assert answer.ok and answer.items == truth.packed, (answer, truth)
    finally:
        backend.close()


def test_make_backend_builds_the_configured_backend(catalog) -> None:
    local = make_backend(config_from_dict({"vlm": {"grade": "low"}}), catalog)
    try:
        assert isinstance(local, LocalBackend)
        assert local.grade is Grade.LOW and local.fallback is None
        assert local.detector.loaded_models == [local.model], "loaded before the first order"
        assert local.confirm is not None and local.confirm_model == "yolo11m-demo", \
            "the default second look: the m model"
        assert local.confirm.loaded_models == ["yolo11m-demo"]
    finally:
        local.close()
    once = make_backend(config_from_dict({"vlm": {"confirm_grade": "none"}}), catalog)
    assert once.confirm is None and once.confirm_model is None
    once.close()
    with pytest.raises(ConfigError, match="vlm.confirm_grade"):
        config_from_dict({"vlm": {"confirm_grade": "huge"}})

    remote = make_backend(config_from_dict(
        {"vlm": {"backend": "openai", "url": "http://ovms:9000", "model_name": "qwen"}}),
        catalog)
    try:
        assert isinstance(remote, OpenAiBackend)
        assert remote.endpoint == "http://ovms:9000/v3/chat/completions"
        assert remote.model_name == "qwen"
    finally:
        remote.close()

    cfg = Config()
    with pytest.raises(ConfigError, match="vlm.backend"):
        make_backend(replace(cfg, vlm=replace(cfg.vlm, backend="ollama")), catalog)
