"""The synthetic order-station camera: its truth matches what it draws, and it is repeatable."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from edgeapp.engine.orders.catalog import TICKET_CLASS, load_catalog
from edgeapp.engine.sources.record import record_synthetic, truth_path
from edgeapp.engine.sources.synthetic import SyntheticScene, pack_order


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _object_share(image: np.ndarray, box: np.ndarray) -> float:
    """Share of pixels in ``box`` that differ clearly from the colour just around it."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = image.shape[:2]
    pad = 6
    ring = np.concatenate([
        image[max(y1 - pad, 0):y1, x1:x2].reshape(-1, 3),
        image[y2:min(y2 + pad, h), x1:x2].reshape(-1, 3),
        image[y1:y2, max(x1 - pad, 0):x1].reshape(-1, 3),
        image[y1:y2, x2:min(x2 + pad, w)].reshape(-1, 3),
    ]).astype(np.int16)
    background = np.median(ring, axis=0)
    inside = image[y1:y2, x1:x2].reshape(-1, 3).astype(np.int16)
    return float((np.abs(inside - background).max(axis=1) > 18).mean())


def test_every_truth_box_holds_a_drawn_object(catalog):
    # Given a scene without noise, when frames with an order are rendered,
    # then every labelled box holds an object that stands out from its surroundings.
    scene = SyntheticScene(catalog, seed=7, noise=0.0)
    checked = 0
    for _ in range(400):
        image, truth = scene.render()
        if truth.hand:
            continue  # a hand may cover an item's surroundings
        h, w = image.shape[:2]
        for box, cls in zip(truth.boxes, truth.classes, strict=False):
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, box
            share = _object_share(image, box)
            assert share > 0.35, f"box of {catalog.class_names[cls]} looks empty ({share:.2f})"
            checked += 1
    assert checked > 200


def test_empty_counter_has_no_boxes_and_bag_holds_the_packed_items(catalog):
    scene = SyntheticScene(catalog, seed=11, wrong_order_rate=0.5)
    last: dict[str, Counter] = {}
    empty_frames = 0
    for _ in range(900):
        truth = scene.skip()
        if truth.order_id is None:
            assert len(truth.boxes) == 0
            empty_frames += 1
        else:
            names = Counter(catalog.class_names[c] for c in truth.classes)
            assert names.pop(TICKET_CLASS) == 1, "one ticket per order on the counter"
            last[truth.order_id] = names
    assert empty_frames > 0
    finished = scene.finished_orders()
    assert len(finished) >= 5
    for order in finished:
        assert dict(last[order.order_id]) == order.packed, order


def test_wrong_orders_are_packed_wrong_at_the_configured_share(catalog):
    scene = SyntheticScene(catalog, seed=3, wrong_order_rate=0.3)
    while len(scene.orders) < 200:
        scene.skip()
    orders = scene.orders[:200]
    wrong = [o for o in orders if o.error]
    assert 0.2 < len(wrong) / len(orders) < 0.4
    assert {o.error for o in wrong} == {"missing", "extra", "quantity"}
    for o in orders:
        assert (o.verdict == "mismatch") == (o.error is not None)
        assert o.expected == catalog.expected(o.order_id)


def test_pack_order_errors_are_real_errors(catalog):
    rng = np.random.default_rng(0)
    expected = {"burger": 2, "cola": 1}
    for _ in range(50):
        packed, kind = pack_order(expected, catalog.item_names, rng, wrong=True)
        assert packed != expected
        if kind == "missing":
            assert set(packed) < set(expected)
        elif kind == "extra":
            assert set(packed) > set(expected)
        else:
            assert set(packed) == set(expected)


def test_same_seed_same_frames_and_skipping_keeps_the_timeline(catalog):
    a = SyntheticScene(catalog, width=320, height=180, seed=5)
    b = SyntheticScene(catalog, width=320, height=180, seed=5)
    for i in range(120):
        img_a, truth_a = a.render()
        if i % 3:
            truth_b = b.skip()
        else:
            img_b, truth_b = b.render()
            assert np.array_equal(img_a, img_b)
        assert truth_a.order_id == truth_b.order_id
        assert np.array_equal(truth_a.boxes, truth_b.boxes)
    c = SyntheticScene(catalog, width=320, height=180, seed=6)
    assert not np.array_equal(c.render()[0], SyntheticScene(
        catalog, width=320, height=180, seed=5).render()[0])


def test_other_resolutions_scale_the_scene(catalog):
    scene = SyntheticScene(catalog, width=640, height=360, seed=2)
    image, _ = scene.render()
    assert image.shape == (360, 640, 3) and image.dtype == np.uint8
    with pytest.raises(ValueError):
        SyntheticScene(catalog, width=10, height=10)


def test_record_writes_video_and_truth(catalog, tmp_path):
    out = tmp_path / "clip.mp4"
    summary = record_synthetic(out, 3, catalog, width=640, height=360, fps=10, seed=1)
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 30
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (360, 640, 3)
    doc = json.loads(truth_path(out).read_text())
    assert summary["frames"] == doc["frames_total"] == len(doc["frames"]) == 30
    assert doc["class_names"][-1] == TICKET_CLASS
    assert all(o["verdict"] in ("validated", "mismatch") for o in doc["orders"])
