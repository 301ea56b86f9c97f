"""Order tracker and frame selector, fed with the synthetic camera's truth as detections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edgeapp.engine.orders.catalog import TICKET_CLASS, load_catalog
from edgeapp.engine.orders.selector import CandidateFrame, select_frames, thumbnail
from edgeapp.engine.orders.tracker import CounterState, OrderTracker
from edgeapp.engine.sources.synthetic import SyntheticScene


@dataclass(frozen=True)
class Read:
    order_id: str | None
    confidence: float
    reason: str | None


class TruthReader:
    """Reads the id the scene shows; counts calls. Fails the first ``fail_first`` reads."""

    def __init__(self, scene: SyntheticScene, fail_first: int = 0) -> None:
        self.scene, self.calls, self.fail_first = scene, 0, fail_first
        self.current: str | None = None

    def __call__(self, image, detections):
        self.calls += 1
        if self.calls <= self.fail_first:
            return Read(None, 0.0, "text not readable")
        return Read(self.current, 0.99, None)


def _detections(truth) -> np.ndarray:
    dets = np.zeros((len(truth.boxes), 6), np.float32)
    dets[:, :4] = truth.boxes
    dets[:, 4] = 0.9
    dets[:, 5] = truth.classes
    return dets


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _run(catalog, frames: int, fail_first: int = 0, seed: int = 21, clear_seconds: float = 0.3):
    scene = SyntheticScene(catalog, width=320, height=180, fps=15, seed=seed)
    reader = TruthReader(scene, fail_first)
    ticket = catalog.class_names.index(TICKET_CLASS)
    tracker = OrderTracker("s1", reader, ticket_class=ticket, clear_seconds=clear_seconds)
    segments = []
    for _ in range(frames):
        image, truth = scene.render()
        reader.current = truth.order_id
        seg = tracker.push(truth.frame_index, truth.frame_index / scene.fps, image,
                           _detections(truth))
        if seg:
            segments.append(seg)
    return scene, tracker, segments, reader


def test_one_segment_per_order_with_the_right_id(catalog):
    scene, _, segments, _ = _run(catalog, 700)
    finished = [o for o in scene.orders if o.end_frame + 10 < scene.frame_index]
    assert len(segments) == len(finished) >= 4
    for seg, truth in zip(segments, finished, strict=False):
        assert seg.order_id == truth.order_id
        assert seg.ended_by == "clear"
        # The frames kept hold every packed item in at least one frame.
        best = max(seg.frames, key=lambda c: len(c.detections))
        names = [catalog.class_names[int(c)] for c in best.detections[:, 5]]
        assert sum(n != TICKET_CLASS for n in names) == sum(truth.packed.values())


def test_order_id_retried_until_read_then_locked(catalog):
    _, _, segments, reader = _run(catalog, 200, fail_first=3)
    assert segments and segments[0].order_id is not None
    # Reads stop once the id is locked: far fewer reads than frames with a ticket.
    assert reader.calls < 40


def test_unreadable_ticket_ends_order_without_id_and_with_reason(catalog):
    _, _, segments, _ = _run(catalog, 200, fail_first=10_000)
    assert segments and segments[0].order_id is None
    assert segments[0].read_reason == "text not readable"


def test_single_stray_detection_does_not_open_an_order():
    tracker = OrderTracker("s1", None, ticket_class=12, clear_seconds=0.2)
    img = np.zeros((18, 32, 3), np.uint8)
    stray = np.array([[0, 0, 5, 5, 0.9, 1]], np.float32)
    none = np.zeros((0, 6), np.float32)
    tracker.push(0, 0.0, img, stray)
    for i in range(1, 10):
        assert tracker.push(i, i * 0.1, img, none) is None
    assert tracker.state is CounterState.IDLE


def test_another_ticket_ends_the_order_when_the_counter_never_looked_clear(catalog):
    # Given a clear time longer than any gap between orders (a detector that sees something
    # on the empty counter has the same effect), the next order's ticket ends each order.
    # (A ticket put down where the last one lay is not told apart: those orders merge.)
    scene, _, segments, _ = _run(catalog, 1500, clear_seconds=30.0)
    ids = [o.order_id for o in scene.orders]
    at = [ids.index(s.order_id) for s in segments]
    assert at[0] == 0 and at == sorted(set(at)), "each segment starts with a later order"
    assert len(segments) >= len(ids) // 2 >= 4
    assert all(s.ended_by == "new ticket" and s.complete for s in segments)


def test_a_resolution_change_mid_order_is_not_another_ticket():
    tracker = OrderTracker("s1", None, ticket_class=12, clear_seconds=0.5)
    full = np.array([[40, 40, 120, 90, 0.9, 12], [300, 100, 380, 180, 0.9, 1]], np.float32)
    half = full.copy()
    half[:, :4] /= 2
    for i in range(20):
        big = i < 10
        image = np.zeros((720, 1280, 3) if big else (360, 640, 3), np.uint8)
        assert tracker.push(i, i * 0.1, image, full if big else half) is None
    assert tracker.state is CounterState.BUSY


def test_a_faint_ticket_on_the_empty_counter_opens_no_order_and_splits_none():
    # Given a pale counter whose lit corner the detector takes for a ticket at 0.4
    tracker = OrderTracker("s1", None, ticket_class=12, clear_seconds=0.5)
    img = np.zeros((720, 1280, 3), np.uint8)
    phantom = np.array([[1117, 0, 1278, 47, 0.4, 12]], np.float32)
    for i in range(10):
        assert tracker.push(i, i * 0.1, img, phantom) is None
    # Then no order opened
    assert tracker.state is CounterState.IDLE
    # And an order whose real ticket lies elsewhere is not cut by the phantom "other ticket"
    order = np.array([[40, 300, 290, 480, 0.97, 12], [500, 100, 600, 200, 0.9, 1]], np.float32)
    for i in range(10, 30):
        assert tracker.push(i, i * 0.1, img, np.concatenate([order, phantom])) is None
    assert tracker.state is CounterState.BUSY


def test_flush_ends_an_order_in_flight_with_the_reason():
    tracker = OrderTracker("s1", None, ticket_class=12)
    img = np.zeros((18, 32, 3), np.uint8)
    dets = np.array([[0, 0, 5, 5, 0.9, 1]], np.float32)
    for i in range(3):
        tracker.push(i, i * 0.1, img, dets)
    seg = tracker.flush(1.0, "station stopped")
    assert seg is not None and seg.ended_by == "station stopped"
    assert len(seg.frames) == 3, "the pre-buffered first frames belong to the order"
    assert tracker.flush(1.1, "again") is None


def _camera_gap(catalog, *, gap_frames: int, world_waits: bool, hold: bool = True):
    """Order 1 of a scene, with the camera away for ``gap_frames`` mid-packing: the world
    waits for it (the same order is still on the counter) or goes on (the scene is rendered
    but not seen). ``hold``: the station holds the order; else it flushes it at once."""
    scene = SyntheticScene(catalog, width=320, height=180, fps=15, seed=21)
    reader = TruthReader(scene)
    tracker = OrderTracker("s1", reader, ticket_class=catalog.class_names.index(TICKET_CLASS),
                           clear_seconds=0.3)
    segments, t, gone = [], 0.0, False
    while len(segments) < 2:
        image, truth = scene.render()
        first = scene.orders[0]
        if not gone and truth.frame_index == (first.start_frame + first.end_frame) // 2:
            gone = True
            if hold:
                tracker.interrupt("camera offline: test", t)
            else:
                segments.append(tracker.flush(t, "camera offline: test"))
            t += gap_frames / scene.fps
            if not world_waits:
                for _ in range(gap_frames):
                    scene.skip()
            continue
        t += 1 / scene.fps
        reader.current = truth.order_id
        seg = tracker.push(truth.frame_index, t, image, _detections(truth))
        if seg:
            segments.append(seg)
    return scene, segments


def test_an_order_whose_camera_comes_back_with_it_on_the_counter_carries_on(catalog):
    scene, (first, second) = _camera_gap(catalog, gap_frames=20, world_waits=True)
    assert first.order_id == scene.orders[0].order_id
    assert first.ended_by == "clear" and first.complete, "its own ticket was seen again"
    assert second.order_id == scene.orders[1].order_id and second.complete


def test_an_order_that_ended_while_its_camera_was_away_is_cut_short(catalog):
    # Given the camera away until the bag has gone: the counter is clear when it is back
    scene, (first, second) = _camera_gap(catalog, gap_frames=60, world_waits=False)
    assert first.order_id == scene.orders[0].order_id
    assert first.ended_by == "camera offline: test" and not first.complete
    assert second.order_id == scene.orders[1].order_id and second.ended_by == "clear"


def test_a_flushed_order_opens_no_second_order_when_its_camera_returns(catalog):
    # Given an order flushed when its camera left, and a camera back with it on the counter
    scene, (first, second) = _camera_gap(catalog, gap_frames=5, world_waits=True, hold=False)
    # Then its remaining frames are ignored: the next segment is the next order, whole
    assert first.ended_by == "camera offline: test" and not first.complete
    assert second.order_id == scene.orders[1].order_id and second.complete
    assert second.start_ts > first.end_ts


def _cand(seq: int, classes: list[int], spot: int, still_s: float = 1.0) -> CandidateFrame:
    """A frame whose picture is told apart by where a white square sits (``spot``)."""
    img = np.full((36, 64, 3), 40, np.uint8)
    img[10:20, spot:spot + 10] = 230
    dets = np.array([[0, 0, 4, 4, 0.9, c] for c in classes], np.float32).reshape(-1, 6)
    return CandidateFrame(seq, seq / 15, img, dets, thumbnail(img), still_s)


def test_selector_covers_every_class_and_skips_near_duplicates():
    frames = [
        _cand(1, [0, 0, 1], 0),
        _cand(2, [0, 0, 1], 0),  # same picture as 1
        _cand(3, [2], 20),  # the only frame with class 2
        _cand(4, [0, 1], 40),
        _cand(5, [12], 50),  # ticket only: evidence only after every frame with items
    ]
    picked = select_frames(frames, k=3, ticket_class=12)
    seqs = [c.seq for c in picked]
    assert 3 in seqs, "class 2 must be covered"
    assert not {1, 2} <= set(seqs), "near-duplicates are not both picked"
    assert 5 not in seqs
    assert seqs == sorted(seqs)
    four = [c.seq for c in select_frames(frames, k=4, ticket_class=12)]
    assert four[1:] == [3, 4, 5] and four[0] in (1, 2), \
        "a new scene, even one without items, before a near-duplicate"
    assert len(select_frames(frames, k=10, ticket_class=12)) == 5


def test_selector_prefers_a_settled_scene_to_a_passing_moment():
    frames = [
        _cand(1, [0], 0, still_s=0.8),  # one item, bag settled
        _cand(2, [0, 1], 10, still_s=1.2),  # both items, bag settled
        _cand(3, [0, 1, 3], 20, still_s=0.0),  # a hand over the bag, read as a third item
        _cand(4, [0, 1], 30, still_s=0.1),  # the hand again, leaving
    ]
    assert [c.seq for c in select_frames(frames, k=2, ticket_class=12, min_still_s=0.4)] \
        == [1, 2]
    assert 3 in [c.seq for c in select_frames(frames, k=2, ticket_class=12)], \
        "without a stillness demand the frame with the most items leads"


def test_selector_picks_the_bag_as_it_left_whatever_the_detector_saw_in_it():
    frames = [
        _cand(1, [12], 0, still_s=0.9),  # the empty bag
        _cand(2, [0, 1], 10, still_s=0.7),  # two items in
        _cand(3, [12, 0], 20, still_s=1.1),  # three in, the detector sees one (low settings)
        _cand(4, [0, 1, 5], 30, still_s=0.0),  # a hand reaching for the bag
    ]
    picked = [c.seq for c in select_frames(frames, k=2, ticket_class=12, min_still_s=0.4)]
    assert picked == [2, 3]


def test_tracker_measures_how_long_each_scene_stayed():
    tracker = OrderTracker("s1", None, ticket_class=12, clear_seconds=0.5)
    dets = np.array([[0, 0, 5, 5, 0.9, 1]], np.float32)
    bag = np.full((360, 640, 3), 60, np.uint8)
    bag[50:300, 200:600] = 200
    rng = np.random.default_rng(0)
    seq, segment = 0, None
    # 1 s settled (a little sensor noise and a brightness change), 0.2 s with a hand
    # moving over the bag, 0.6 s settled again, then the counter is clear.
    frames = [np.clip(bag * 1.05 + rng.normal(0, 3, bag.shape), 0, 255) for _ in range(11)]
    for x in (100, 300, 500):
        hand = bag.copy()
        hand[100:360, x - 80:x + 80] = 120
        frames.append(hand)
    frames += [bag.copy() for _ in range(7)]
    for image in frames:
        tracker.push(seq, seq * 0.1, image.astype(np.uint8), dets)
        seq += 1
    while segment is None:
        segment = tracker.push(seq, seq * 0.1, np.full_like(bag, 60), np.zeros((0, 6), np.float32))
        seq += 1
    still = [round(c.still_s, 2) for c in segment.frames]
    assert still == [1.0] * 11 + [0.0, 0.0, 0.0] + [0.6] * 7
