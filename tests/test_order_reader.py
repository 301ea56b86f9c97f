"""The order-ID reader on real frames of the synthetic camera, with the real rapidocr models.

Frames come from held-out seeds (>= 50000); the detector model is trained on 10000-30999.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rapidocr_onnxruntime  # noqa: F401 - the app extra's OCR: missing, this module fails

from edgeapp.engine.bench.ocr import held_out_frames
from edgeapp.engine.orders.catalog import TICKET_CLASS, load_catalog
from edgeapp.engine.sources.sprites import draw_ticket
from edgeapp.engine.sources.synthetic import SyntheticScene
from edgeapp.engine.vision.order_reader import (
    AMBIGUOUS,
    LOW_CONFIDENCE,
    NO_TEXT,
    NO_TICKET,
    TEXT_TOO_SMALL,
    UNKNOWN_ID,
    OrderIdReader,
    parse_order_text,
)
from edgeapp.errors import InputError


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def ticket_class(catalog):
    return catalog.class_names.index(TICKET_CLASS)


@pytest.fixture(scope="module")
def reader(catalog, ticket_class):
    reader = OrderIdReader(catalog.orders, ticket_class=ticket_class)
    reader.warm_up()
    return reader


def _ticket_detection(truth, ticket_class: int) -> np.ndarray:
    box = truth.boxes[int(np.flatnonzero(truth.classes == ticket_class)[0])]
    return np.array([[*box, 0.9, ticket_class]], np.float32)


def _empty_counter(catalog, seed: int = 50300) -> np.ndarray:
    scene = SyntheticScene(catalog, seed=seed, qr_rate=0.0)
    image, truth = scene.render()  # every scene starts with a clear counter
    assert truth.order_id is None
    return image


def _with_ticket(background: np.ndarray, order_id: str, *, qr: bool, seed: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``background`` with a ticket for ``order_id`` laid on it, and the ticket's xyxy box."""
    sprite = draw_ticket(order_id, 1.0, np.random.default_rng(seed), qr=qr)
    image = background.copy()
    x, y = 60, 200
    w, h = sprite.size
    np.copyto(image[y:y + h, x:x + w], sprite.image, where=sprite.mask)
    return image, np.array([x, y, x + w, y + h], np.float32)


# -- reading real frames ------------------------------------------------------------------

def test_reads_the_order_on_held_out_frames_with_and_without_detections(reader, ticket_class):
    # Given frames of held-out stations with a ticket on the counter (no QR: OCR alone),
    # when they are read with the ticket's box and by searching the whole frame,
    # then every read names the order on the counter.
    frames = list(held_out_frames(6, 50100, width=1280, height=720, qr_rate=0.0,
                                  frames_per_order=1))
    assert len({truth.order_id for _, truth in frames}) == 6
    for image, truth in frames:
        with_box = reader.read(image, _ticket_detection(truth, ticket_class))
        searched = reader.read(image)
        for how, read in (("with box", with_box), ("searched", searched)):
            assert read.order_id == truth.order_id, (how, read)
            assert read.method == "ocr" and read.reason is None
            assert reader.min_confidence <= read.confidence <= 1.0


def test_whole_frame_text_search_finds_a_ticket_that_is_not_bright_paper(
        reader, monkeypatch):
    # Given a frame where the bright-paper search finds nothing (as on a dim real counter),
    # then the reader finds the ORDER line by text detection on the whole frame.
    from edgeapp.engine.vision import order_reader

    monkeypatch.setattr(order_reader, "find_paper", lambda image: [])
    [(image, truth)] = held_out_frames(1, 50120, width=1280, height=720, qr_rate=0.0)
    read = reader.read(image)
    assert (read.order_id, read.method) == (truth.order_id, "ocr"), read


def test_reads_low_resolution_frames(reader, ticket_class):
    frames = list(held_out_frames(3, 50150, width=640, height=360, qr_rate=0.0,
                                  frames_per_order=1))
    for image, truth in frames:
        assert reader.read(image, _ticket_detection(truth, ticket_class)).order_id == \
            truth.order_id


def test_too_small_print_is_unreadable_not_guessed(reader, ticket_class):
    # At 320x180 the order number is ~5 px high; PP-OCR would swap digits with high scores.
    frames = list(held_out_frames(3, 50160, width=320, height=180, qr_rate=0.0,
                                  frames_per_order=1))
    for image, truth in frames:
        read = reader.read(image, _ticket_detection(truth, ticket_class))
        assert read.order_id is None and read.reason == TEXT_TOO_SMALL, read


def test_qr_code_is_read_when_present(reader, ticket_class):
    frames = list(held_out_frames(3, 50200, width=1280, height=720, qr_rate=1.0,
                                  frames_per_order=1))
    for image, truth in frames:
        read = reader.read(image, _ticket_detection(truth, ticket_class))
        assert (read.order_id, read.method, read.confidence) == (truth.order_id, "qr", 1.0)


def test_qr_code_wins_over_the_printed_number(catalog, reader, ticket_class):
    # Given a ticket printed "ORDER #107" whose QR code says 112 (both known orders),
    # then the exact QR decode is taken.
    background = _empty_counter(catalog)
    printed, box = _with_ticket(background, "107", qr=False)
    coded, _ = _with_ticket(background, "112", qr=True)
    x1, y1, x2, y2 = box.astype(int)
    right = x1 + (x2 - x1) * 6 // 10
    printed[y1:y2, right:x2] = coded[y1:y2, right:x2]  # the QR sits in the right part
    dets = np.array([[*box, 0.9, ticket_class]], np.float32)
    read = reader.read(printed, dets)
    assert (read.order_id, read.method) == ("112", "qr"), read


def test_unknown_order_number_is_none_with_reason(catalog, reader, ticket_class):
    assert "999" not in catalog.orders
    image, box = _with_ticket(_empty_counter(catalog), "999", qr=False)
    dets = np.array([[*box, 0.9, ticket_class]], np.float32)
    for read in (reader.read(image, dets), reader.read(image)):
        assert read.order_id is None and read.reason == UNKNOWN_ID, read
        assert "999" in read.raw_text
    qr_image, _ = _with_ticket(_empty_counter(catalog), "999", qr=True)
    read = reader.read(qr_image, dets)
    assert (read.order_id, read.method, read.reason) == (None, "qr", UNKNOWN_ID), read


def test_empty_counter_reads_nothing(catalog, reader, ticket_class):
    image = _empty_counter(catalog)
    searched = reader.read(image)
    assert searched.order_id is None and searched.reason in (NO_TICKET, NO_TEXT), searched
    no_ticket_rows = np.array([[700, 100, 800, 200, 0.9, 0]], np.float32)
    for dets in (np.zeros((0, 6), np.float32), no_ticket_rows):
        read = reader.read(image, dets)
        assert (read.order_id, read.reason) == (None, NO_TICKET)


# -- input checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("image", [
    np.zeros((720, 1280, 3), np.float32),
    np.zeros((720, 1280, 5), np.uint8),
    np.zeros((1280,), np.uint8),
    np.zeros((8, 8, 3), np.uint8),
    [[0, 0, 0]],
    None,
])
def test_garbage_image_is_an_input_error(reader, image):
    with pytest.raises(InputError):
        reader.read(image)


@pytest.mark.parametrize("dets", [
    np.zeros((2, 4), np.float32),
    np.zeros((6,), np.float32),
    np.array([[0, 0, np.nan, 10, 0.9, 12]], np.float32),
    [["a", "b", "c", "d", "e", "f"]],
])
def test_garbage_detections_are_an_input_error(reader, dets):
    with pytest.raises(InputError):
        reader.read(np.zeros((720, 1280, 3), np.uint8), dets)


def test_reader_needs_order_ids():
    with pytest.raises(InputError):
        OrderIdReader([])


# -- parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "ORDER #107", "ORDER #1O7", "0RDER # 107", "ORDER H107", "ORDER*107", "ORDER 井107",
    "ORDR #107", "order #1 07", "ORDERHI07", "#107",
])
def test_parser_reads_ocr_confusions(reader, text):
    read = reader.parse(text, confidence=0.95)
    assert (read.order_id, read.reason) == ("107", None), read


@pytest.mark.parametrize("text, reason", [
    ("ORDER #1077", UNKNOWN_ID),  # not 107 with a stray digit: 1077 is not an order
    ("ORDER #107 7", UNKNOWN_ID),  # may be 1077 split by OCR: neither 107 nor a guess
    ("ORDER #999", UNKNOWN_ID),
    ("ORDER #10", UNKNOWN_ID),
    ("COUNTER 3 10:17", NO_TEXT),
    ("107", NO_TEXT),  # a bare number could be anything on the ticket
    ("", NO_TEXT),
    ("ORDER #107 ORDER #108", AMBIGUOUS),
])
def test_parser_refuses_to_guess(reader, text, reason):
    read = reader.parse(text, confidence=0.95)
    assert (read.order_id, read.reason) == (None, reason), read


def test_low_confidence_read_is_refused(reader):
    read = reader.parse("ORDER #107", confidence=0.3)
    assert (read.order_id, read.reason) == (None, LOW_CONFIDENCE)
    assert read.confidence == pytest.approx(0.3)


def test_parse_order_text_marks_letters_read_as_digits():
    cands = {c.order_id: c.fixes for c in parse_order_text("ORDER #1O7")}
    assert cands.get("107") == 1


def test_importing_the_reader_does_not_load_rapidocr():
    # The worker path must run without the app extra: rapidocr is imported on first read.
    code = ("import sys, edgeapp.engine.vision.order_reader; "
            "sys.exit('rapidocr_onnxruntime' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
