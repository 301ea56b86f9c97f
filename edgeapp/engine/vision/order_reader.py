"""Reads the order ID (``ORDER #NNN``) from the printed ticket on the counter.

Pipeline for one frame:

1. ticket regions: the detector's ``ticket`` boxes when the caller passes detections, else a
   bright-paper search (:mod:`edgeapp.engine.vision.ticket`), else (optionally) text
   detection on the whole frame;
2. per region: a QR code (``cv2.QRCodeDetector``) wins when it names a known order; else the
   region is cropped, upscaled to a fixed width and read with rapidocr (PP-OCR det + rec);
3. the text is parsed tolerantly (``0RDER``, ``#`` read as ``H``/``*``, ``O`` for ``0`` in the
   number, stray spaces) and the ID is accepted only if the orders catalogue has it.

It never guesses: print too few pixels high to read safely, a number that is not in the
catalogue, two different known numbers, or a read below ``min_confidence`` give
``order_id=None`` with a ``reason`` the tracker turns into an ``unreadable`` order.

Cost (``edgeapp bench ocr``): one ticket read is one small text detection plus, normally,
one recognised line, ~50-70 ms on one ONNX Runtime thread; the whole-frame text search,
used only without detections and without a paper-like ticket, costs ~0.5 s.

rapidocr is an ``app``-extra package: it is imported on first use, so importing this module
(and the worker path) does not need it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

from edgeapp.engine.vision.ticket import (
    QrReader,
    TicketRegion,
    clip_box,
    crop,
    find_paper,
    regions_from_detections,
)
from edgeapp.errors import InputError
from edgeapp.extras import require

# Why a read gave no order id.
NO_TICKET = "no_ticket"  # no ticket region found in the frame
NO_TEXT = "no_text"  # a ticket, but no ``ORDER #…`` text on it
UNKNOWN_ID = "unknown_id"  # an order number that is not in the catalogue
AMBIGUOUS = "ambiguous"  # two different known order numbers in one frame
LOW_CONFIDENCE = "low_confidence"  # a known number, read too unsure to trust
TEXT_TOO_SMALL = "text_too_small"  # the print is too few pixels high to read safely

# Ticket crops are resized to this width before text detection: the demo ticket's big
# print is then ~26 px high, where PP-OCR det/rec are accurate, and the detector's input
# stays at most _DET_SIDE px so a read costs tens of milliseconds.
_CROP_WIDTH = 320
_CROP_PAD = 0.06
_DET_SIDE = 384
# Whole-frame text search (no detections, no paper found): detector input side.
_FRAME_DET_SIDE = 960
# Text lines lower than this many frame pixels (detector box, ~1.5x the capital height) are
# not read: measured on the demo tickets, PP-OCR reads ~9 px lines right or not at all but
# ~8 px lines confidently wrong (3/5/6/8 swapped, score up to 0.96), and no score threshold
# separates those. 640x360 frames give ~14 px, 480x270 ~11 px.
_MIN_TEXT_PX = 10.0
# Lines recognised per ticket crop, tallest first (the order number is the big print).
_LINES_PER_TICKET = 3
# Lines recognised in a whole-frame text search (product labels are text too).
_LINES_PER_FRAME = 12
# Each letter read where a digit must be (``1O7``) costs this share of confidence.
_CORRECTION_PENALTY = 0.05

# Letters OCR reads for digits; applied only inside the number after ``ORDER #``.
_DIGIT_FOR = str.maketrans({"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1",
                            "|": "1", "!": "1", "]": "1", "[": "1", "J": "1", "Z": "2",
                            "S": "5", "B": "8", "G": "6"})
_DIGITISH = frozenset("0123456789OQDUILZSBGJ|!][")
# ``#`` as OCR sees it on a ticket; PP-OCR's Chinese dictionary has ``井`` and ``＃``.
_MARKS = frozenset("#H*＃井+=%")
_KEYWORD = "ORDER"
_KEYWORD_FOR = str.maketrans({"0": "O", "Q": "O", "F": "E", "P": "R", "K": "R"})
_TOKEN = re.compile(r"[0-9A-Z|!\]\[-]+")


@dataclass(frozen=True)
class OrderIdRead:
    """What one read of a frame gave: the order id or None, and why."""

    order_id: str | None
    confidence: float  # 0..1; QR decodes are 1.0, OCR its least sure character of the id
    method: str  # "qr" | "ocr" | "none"
    raw_text: str  # the text the id was parsed from (or the best text seen); "" if none
    reason: str | None  # None when order_id is set, else one of the reason constants above

    @property
    def ok(self) -> bool:
        """True when an order id was read."""
        return self.order_id is not None


class IdCandidate(NamedTuple):
    """A possible order id in a line of text: where it is and how many letters became digits."""

    order_id: str
    fixes: int  # letters read where a digit must be (``1O7`` -> ``107``: 1)
    start: int  # [start, end) in the original text
    end: int


def _normalise(text: str) -> tuple[str, list[int]]:
    """Upper-case NFKC text with single spaces, and where each of its characters came from."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).upper():
            if c.isspace():
                if not chars or chars[-1] == " ":
                    continue
                c = " "
            chars.append(c)
            where.append(i)
    return "".join(chars).rstrip(), where


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] == " ":
        i += 1
    return i


def _number_end(s: str, t: int) -> int:
    """End of the number starting at ``t``: look-alike letters allowed, and further groups
    of plain digits after single spaces (OCR splits ``107`` as ``1 07``), but never a word
    after a space (``107 ORDER`` ends at ``7``)."""
    end = t
    while end < len(s) and s[end] in _DIGITISH:
        end += 1
    while end > t and end + 1 < len(s) and s[end] == " ":
        group = _TOKEN.match(s, end + 1)
        if group is None or not group.group(0).isdigit():
            break
        end = group.end()
    return end


def parse_order_text(text: str) -> list[IdCandidate]:
    """Candidate order ids in an OCR'd line of text.

    Looks for the keyword ``ORDER`` (one wrong letter allowed, ``0``/``O`` alike) or a ``#``,
    then takes the token after it, with and without a leading ``#``-like mark (``H``, ``*``),
    as written and with look-alike letters read as digits; spaces around the mark and between
    digit groups are ignored, so ``0RDER # 1 07`` reads as ``ORDER#107``. Every candidate is
    returned; the caller keeps the ones its catalogue knows.
    """
    s, where = _normalise(text)
    starts: list[int] = []
    for i in range(len(s) - len(_KEYWORD) + 1):
        window = s[i:i + len(_KEYWORD)].translate(_KEYWORD_FOR)
        if sum(a != b for a, b in zip(window, _KEYWORD, strict=True)) <= 1:
            starts.append(i + len(_KEYWORD))
    starts += [i + 1 for i, ch in enumerate(s) if ch == "#"]
    found: dict[tuple[str, int, int], int] = {}
    for start in starts:
        t = _skip_spaces(s, start)
        tails = [t, _skip_spaces(s, t + 1)] if s[t:t + 1] in _MARKS else [t]
        for t in tails:
            raw = _TOKEN.match(s, t)
            end = _number_end(s, t)
            # The token as written, unless the number runs on past it: ``107 7`` may be
            # 1077 split by OCR, so it must not also offer 107.
            if raw and raw.end() >= end:
                found.setdefault((raw.group(0), t, raw.end()), 0)
            if end > t:
                digitish = s[t:end].replace(" ", "")
                digits = digitish.translate(_DIGIT_FOR)
                fixes = sum(a != b for a, b in zip(digitish, digits, strict=True))
                found.setdefault((digits, t, end), fixes)
    return [IdCandidate(cand, fixes, where[t], where[end - 1] + 1)
            for (cand, t, end), fixes in found.items()]


class _Line(NamedTuple):
    """One recognised line: text, the recogniser's mean score, and per-character scores."""

    text: str
    score: float
    char_scores: tuple[float, ...]  # aligned with ``text``; empty when unknown

    def confidence(self, start: int, end: int) -> float:
        """Confidence of ``text[start:end]``: its least sure character, else the line score."""
        if len(self.char_scores) == len(self.text) and end > start:
            return min(self.score, *self.char_scores[start:end])
        return self.score


class OrderIdReader:
    """Reads ``ORDER #NNN`` from a frame's ticket; see the module docstring for the pipeline.

    ``catalog_ids``: the known order ids (``catalog.orders`` works). ``ticket_class``: the
    detector class of tickets; None takes every detection row as a ticket. ``use_qr``:
    decode QR codes. ``search_frame_text``: without detections and without a paper-like
    ticket, run text detection on the whole frame (~0.5 s). ``min_text_px``: lines lower
    than this (frame pixels) are not read. ``threads``: ONNX Runtime threads per read.

    Thread-safety: a reader holds one ONNX Runtime session pair and an OpenCV QR detector;
    calls are serialised by an internal lock, so sharing one reader between threads is safe
    but not parallel. Use one reader per station process (the design's normal case).
    """

    def __init__(
        self,
        catalog_ids: Iterable[str],
        *,
        ticket_class: int | None = None,
        min_confidence: float = 0.6,
        use_qr: bool = True,
        search_frame_text: bool = True,
        min_text_px: float = _MIN_TEXT_PX,
        threads: int = 1,
    ) -> None:
        self.known_ids = frozenset(str(i) for i in catalog_ids)
        if not self.known_ids:
            raise InputError("order reader: the catalogue has no order ids")
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(f"order reader: min_confidence {min_confidence} is not in 0..1")
        self.ticket_class = ticket_class
        self.min_confidence = float(min_confidence)
        self.use_qr = use_qr
        self.search_frame_text = search_frame_text
        self.min_text_px = float(min_text_px)
        self.threads = max(1, int(threads))
        self._engine: Any = None
        self._qr = QrReader()
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the OCR models and run them once, so the first real read is not slow."""
        with self._lock:
            engine = self._ocr()
            blank = np.full((96, _CROP_WIDTH, 3), 235, np.uint8)
            cv2.putText(blank, "ORDER #000", (10, 60), cv2.FONT_HERSHEY_DUPLEX, 0.95,
                        (25, 25, 25), 2, cv2.LINE_AA)
            found = self._text_lines(engine, blank, _DET_SIDE, 1, 0.0) or []
            self._recognise(engine, [c for _, c in found])
            self._qr.decode(blank)
            if self.search_frame_text:  # ONNX Runtime's first run at a new input size is slow
                frame = np.full((_FRAME_DET_SIDE * 9 // 16, _FRAME_DET_SIDE, 3), 128, np.uint8)
                self._text_lines(engine, frame, _FRAME_DET_SIDE, 1, 0.0)

    def read(self, image: np.ndarray, detections: np.ndarray | None = None) -> OrderIdRead:
        """Read the order id from a BGR frame; ``detections`` are the detector's ``(N, 6)`` rows.

        With detections, only their ticket boxes are read (none → ``no_ticket``); without,
        the frame is searched for the ticket.
        """
        image = _check_image(image)
        dets = None if detections is None else _check_detections(detections)
        with self._lock:
            if dets is not None:
                regions = regions_from_detections(dets, self.ticket_class, image.shape)
                return self._read_regions(image, regions)
            regions = find_paper(image)
            result = self._read_regions(image, regions) if regions else _none(NO_TICKET)
            # The whole-frame text search costs ~10 ticket reads: only when no paper ticket
            # was found or the paper found held no order text (a false candidate).
            if result.reason not in (NO_TICKET, NO_TEXT) or not self.search_frame_text:
                return result
            whole = self._read_frame_text(image)
            return whole if whole.ok else _most_telling([result, whole])

    __call__ = read

    def parse(self, text: str, confidence: float = 1.0, method: str = "ocr") -> OrderIdRead:
        """Turn one line of text into a read: a known id, or None with the reason."""
        return self._decide([_Line(text, float(confidence), ())], method)

    # -- internals ------------------------------------------------------------------------
    def _read_regions(self, image: np.ndarray, regions: list[TicketRegion]) -> OrderIdRead:
        if not regions:
            return _none(NO_TICKET)
        results: list[OrderIdRead] = []
        for region in regions:
            patch, scale = crop(image, region.box, pad=_CROP_PAD, target_width=_CROP_WIDTH)
            if self.use_qr:
                payload = self._qr.decode(patch)
                if payload is not None:
                    qr = self._decide([_Line(payload, 1.0, ())], "qr")
                    if qr.ok or qr.reason == UNKNOWN_ID:
                        # An exact decode of an unknown number is an unknown order, not a
                        # reason to trust a fuzzier OCR of the same ticket.
                        return qr
            result = self._read_ticket_text(patch, scale)
            if result.ok:
                return result
            results.append(result)
        return _most_telling(results)

    def _read_ticket_text(self, patch: np.ndarray, scale: float) -> OrderIdRead:
        """OCR a ticket crop: the tallest line first (the big print), the others only if needed.

        Recognising a line costs as much as detecting all of them, so the common case is one
        detection pass and one recognised line. ``scale`` is crop pixels per frame pixel.
        """
        engine = self._ocr()
        found = self._text_lines(engine, patch, _DET_SIDE, _LINES_PER_TICKET,
                                 self.min_text_px * scale)
        if found is None:
            return _none(TEXT_TOO_SMALL, "ocr")
        if not found:
            return _none(NO_TEXT, "ocr")
        crops = [c for _, c in found]
        lines = self._recognise(engine, crops[:1])
        result = self._decide(lines, "ocr")
        if result.ok or len(crops) == 1:
            return result
        return self._decide(lines + self._recognise(engine, crops[1:]), "ocr")

    def _read_frame_text(self, image: np.ndarray) -> OrderIdRead:
        """Last resort without detections or paper: find ``ORDER`` text anywhere in the frame.

        A line that looks like an order number is not trusted as read here: the region
        around it is read again like a ticket crop, so the same upscale and the same
        minimum text height apply (on a whole small frame the detector merges the ticket's
        lines into one box that looks tall enough).
        """
        engine = self._ocr()
        found = self._text_lines(engine, image, _FRAME_DET_SIDE, _LINES_PER_FRAME,
                                 self.min_text_px / 2)
        if found is None:
            return _none(TEXT_TOO_SMALL, "ocr")
        if not found:
            return _none(NO_TICKET)
        lines = self._recognise(engine, [c for _, c in found])
        hits = [box for (box, _), line in zip(found, lines, strict=True)
                if parse_order_text(line.text)]
        if not hits:
            return self._decide(lines, "ocr")
        reads: list[OrderIdRead] = []
        for box in hits[:2]:
            (x1, y1), (x2, y2) = box.min(axis=0), box.max(axis=0)
            h, w = y2 - y1, x2 - x1
            region = clip_box((x1 - 0.1 * w, y1 - h, x2 + 0.1 * w, y2 + h), image.shape)
            if region is None:
                continue
            patch, scale = crop(image, region, pad=0.0, target_width=_CROP_WIDTH)
            read = self._read_ticket_text(patch, scale)
            if read.ok:
                return read
            reads.append(read)
        return _most_telling(reads) if reads else _none(NO_TEXT, "ocr")

    @staticmethod
    def _text_lines(engine: Any, patch: np.ndarray, side: int, limit: int, min_height: float
                    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Text lines in ``patch`` as (quadrilateral, upright crop), tallest first, ``limit``.

        Lines lower than ``min_height`` (patch pixels) are dropped; None when there was text
        but all of it was that small.
        """
        engine.text_det.limit_side_len = side
        boxes, _ = engine.text_det(patch)
        if boxes is None or len(boxes) == 0:
            return []
        heights = [float(np.linalg.norm(b[0] - b[3])) for b in boxes]
        widths = [float(np.linalg.norm(b[0] - b[1])) for b in boxes]
        # Lines of text are wide; square blobs (a QR code, a logo) are not worth a read.
        order = [i for i in np.argsort(heights)[::-1] if widths[i] >= 1.5 * heights[i]]
        if not order:
            return []
        keep = [boxes[i].astype(np.float32) for i in order[:limit] if heights[i] >= min_height]
        if not keep:
            return None
        return list(zip(keep, engine.get_crop_img_list(patch, keep), strict=True))

    @staticmethod
    def _recognise(engine: Any, crops: list[np.ndarray]) -> list[_Line]:
        # ``return_word_box`` makes rapidocr 1.x keep each character's probability (the 5th
        # entry of the word info); the order number is judged by its least sure digit,
        # because a line mean hides one doubtful digit behind nine clear letters.
        recs, _ = engine.text_rec(crops, True)
        lines = []
        for rec in recs:
            text, score = str(rec[0]), float(rec[1])
            chars: tuple[float, ...] = ()
            info = rec[2] if len(rec) > 2 else None
            if isinstance(info, list) and len(info) >= 5 and len(info[4]) == len(text):
                chars = tuple(float(c) for c in info[4])
            lines.append(_Line(text, score, chars))
        return lines

    def _decide(self, lines: list[_Line], method: str) -> OrderIdRead:
        """Pick the order id from recognised lines, or say why there is none."""
        known: dict[str, tuple[float, str]] = {}
        unknown: list[str] = []
        for line in lines:
            for cand in parse_order_text(line.text):
                if cand.order_id in self.known_ids:
                    conf = line.confidence(cand.start, cand.end)
                    conf = max(0.0, conf * (1.0 - _CORRECTION_PENALTY * cand.fixes))
                    if conf > known.get(cand.order_id, (-1.0, ""))[0]:
                        known[cand.order_id] = (conf, line.text)
                else:
                    unknown.append(line.text)
        if len(known) > 1:
            return OrderIdRead(None, 0.0, method, " | ".join(t for _, t in known.values()),
                               AMBIGUOUS)
        if known:
            order_id, (conf, text) = next(iter(known.items()))
            if conf < self.min_confidence:
                return OrderIdRead(None, conf, method, text, LOW_CONFIDENCE)
            return OrderIdRead(order_id, conf, method, text, None)
        if unknown:
            return OrderIdRead(None, 0.0, method, unknown[0], UNKNOWN_ID)
        best = max(lines, key=lambda t: t.score).text if lines else ""
        return OrderIdRead(None, 0.0, method, best, NO_TEXT)

    def _ocr(self) -> Any:
        if self._engine is None:
            rapidocr = require("rapidocr_onnxruntime", "app")
            engine = rapidocr.RapidOCR(intra_op_num_threads=self.threads, inter_op_num_threads=1)
            # Fixed-size ticket crops: cap the detector's input instead of rapidocr's
            # default of scaling the short side up to 736 px (10x the work for no gain).
            engine.text_det.limit_type = "max"
            self._engine = engine
        return self._engine


_REASON_RANK = {UNKNOWN_ID: 0, AMBIGUOUS: 1, LOW_CONFIDENCE: 2, TEXT_TOO_SMALL: 3, NO_TEXT: 4,
                NO_TICKET: 5}


def _most_telling(results: list[OrderIdRead]) -> OrderIdRead:
    """Of several failed reads, the one that says most (an unknown id beats no text)."""
    return min(results, key=lambda r: _REASON_RANK.get(r.reason or "", 9))


def _none(reason: str, method: str = "none") -> OrderIdRead:
    return OrderIdRead(None, 0.0, method, "", reason)


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError(f"order reader: image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"order reader: image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"order reader: image must be HxWx3 BGR, got shape {image.shape}")
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise InputError(f"order reader: image {image.shape[1]}x{image.shape[0]} is too small")
    return np.ascontiguousarray(image)


def _check_detections(detections: Any) -> np.ndarray:
    try:
        dets = np.asarray(detections, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"order reader: detections are not numeric: {exc}") from None
    if dets.size == 0:
        return np.zeros((0, 6), np.float32)
    if dets.ndim != 2 or dets.shape[1] != 6:
        raise InputError(f"order reader: detections must be (N, 6), got shape {dets.shape}")
    if not np.isfinite(dets).all():
        raise InputError("order reader: detections hold NaN or infinity")
    return dets
