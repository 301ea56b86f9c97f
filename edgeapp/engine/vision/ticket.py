"""Where the order ticket is in a frame, and its QR code: plain OpenCV, no OCR model.

The order-ID reader crops the ticket before it runs text recognition, so a read looks at a
few hundred pixels instead of the whole frame. The ticket region comes from the detector's
``ticket`` boxes when the caller has them, else from a search for a bright, paper-like
quadrilateral.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The bright-paper search works on a frame downscaled to this width: enough for a ticket
# (≈ 1/5 of the frame width on the demo camera), cheap to threshold a few times.
_SEARCH_WIDTH = 480
# A ticket covers between these shares of the frame, and its outline (min-area rectangle)
# is this long relative to its short side at most.
_MIN_AREA_SHARE, _MAX_AREA_SHARE = 0.004, 0.25
_MAX_ASPECT = 3.0
# How much of the min-area rectangle the blob fills: paper is a clean quadrilateral; food,
# lids and merged counter regions are not.
_MIN_FILL = 0.88


@dataclass(frozen=True)
class TicketRegion:
    """A candidate ticket: its axis-aligned box in frame pixels and how sure the finder is."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2, clipped to the frame
    score: float
    source: str  # "detection" | "paper"


def regions_from_detections(
    detections: np.ndarray, ticket_class: int | None, shape: tuple[int, ...], limit: int = 2
) -> list[TicketRegion]:
    """The best ``limit`` ticket boxes among ``(N, 6)`` detections, highest score first.

    ``ticket_class=None`` takes every row as a ticket (the caller filtered them already).
    """
    rows = detections if ticket_class is None else detections[
        np.rint(detections[:, 5]).astype(np.int64) == int(ticket_class)]
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    out: list[TicketRegion] = []
    for x1, y1, x2, y2, score, _ in rows:
        box = clip_box((x1, y1, x2, y2), shape)
        if box is not None:
            out.append(TicketRegion(box, float(score), "detection"))
        if len(out) == limit:
            break
    return out


def find_paper(image: np.ndarray, limit: int = 2) -> list[TicketRegion]:
    """Bright, nearly rectangular blobs that could be a paper ticket, best first.

    The paper is the brightest flat surface around it but its absolute brightness changes
    with the camera's exposure, so the frame is thresholded at a few levels between its
    median and its bright end and every level's outlines are kept that look like a sheet:
    the right size, a filled min-area rectangle, and dark print inside.
    """
    h, w = image.shape[:2]
    f = min(1.0, _SEARCH_WIDTH / w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA) if f < 1.0 else image
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    gray = cv2.GaussianBlur(gray, (3, 3), 0)
    sh, sw = gray.shape
    area = float(sh * sw)
    lo, hi = np.percentile(gray, (50, 99.5))
    if hi - lo < 12:  # a flat frame: nothing stands out
        return []
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    found: list[tuple[float, tuple[int, int, int, int]]] = []
    for level in np.linspace(lo + 0.25 * (hi - lo), hi - 0.08 * (hi - lo), 6):
        mask = cv2.morphologyEx((gray > level).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            a = cv2.contourArea(c)
            if not _MIN_AREA_SHARE * area <= a <= _MAX_AREA_SHARE * area:
                continue
            (_, _), (rw, rh), _ = cv2.minAreaRect(c)
            if min(rw, rh) < 6 or max(rw, rh) / max(min(rw, rh), 1e-6) > _MAX_ASPECT:
                continue
            fill = a / (rw * rh)
            if fill < _MIN_FILL:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            if not _has_print(gray[y:y + bh, x:x + bw], level):
                continue
            box = (x / f, y / f, (x + bw) / f, (y + bh) / f)
            found.append((fill, clip_box(box, image.shape)))  # type: ignore[arg-type]
    found.sort(key=lambda t: -t[0])
    out: list[TicketRegion] = []
    for score, box in found:
        if box is not None and all(_iou(box, r.box) < 0.5 for r in out):
            out.append(TicketRegion(box, float(score), "paper"))
        if len(out) == limit:
            break
    return out


def _has_print(patch: np.ndarray, level: float) -> bool:
    """Whether a bright patch holds dark marks (text, a QR code) rather than being blank."""
    if patch.size == 0:
        return False
    return float((patch < level - 40).mean()) > 0.01


def crop(image: np.ndarray, box: tuple[int, int, int, int], *, pad: float,
         target_width: int) -> tuple[np.ndarray, float]:
    """The region ``box`` grown by ``pad`` (share of its size), resized to ``target_width``.

    Returns the crop and its scale (crop pixels per frame pixel).

    Upscaling uses cubic interpolation: text a few pixels high reads far better from a
    smooth upscale than from the recogniser's own linear resize of a tiny line.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    x1, y1 = max(0, int(x1 - px)), max(0, int(y1 - py))
    x2, y2 = min(w, int(np.ceil(x2 + px))), min(h, int(np.ceil(y2 + py)))
    patch = image[y1:y2, x1:x2]
    f = target_width / max(patch.shape[1], 1)
    if abs(f - 1.0) < 0.05:
        return np.ascontiguousarray(patch), 1.0
    size = (max(1, round(patch.shape[1] * f)), max(1, round(patch.shape[0] * f)))
    inter = cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA
    return cv2.resize(patch, size, interpolation=inter), size[0] / patch.shape[1]


class QrReader:
    """Decodes a QR code in a ticket crop with ``cv2.QRCodeDetector``.

    One instance per thread: the OpenCV detector keeps state between calls.
    """

    # Below this many pixels per side the modules are too small to decode; crops are
    # upscaled to at least this before decoding.
    MIN_SIDE = 360

    def __init__(self) -> None:
        self._detector = cv2.QRCodeDetector()

    def decode(self, patch: np.ndarray) -> str | None:
        """The QR payload in ``patch``, or None when there is no readable code."""
        f = self.MIN_SIDE / max(min(patch.shape[:2]), 1)
        if f > 1.0:
            patch = cv2.resize(patch, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        try:
            text, points, _ = self._detector.detectAndDecode(patch)
        except cv2.error:
            return None
        if points is None or not text:
            return None
        return str(text)


def clip_box(box: tuple[float, float, float, float], shape: tuple[int, ...]
             ) -> tuple[int, int, int, int] | None:
    """``box`` (x1, y1, x2, y2) as whole pixels inside a frame of ``shape``; None if < 4 px."""
    h, w = shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return x1, y1, x2, y2


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
