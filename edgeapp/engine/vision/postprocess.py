"""YOLO11 / YOLOv8 detection head output -> frame-coordinate detections, in numpy.

The head gives ``(1, 4 + nc, anchors)``: per anchor a ``cx, cy, w, h`` box in model-input
pixels and one sigmoid score per class. Decoding follows ultralytics' ``non_max_suppression``
(single label per anchor, strict ``score > conf``, class-wise NMS by offsetting each class's
boxes far apart, ``max_nms`` candidates, ``max_det`` kept) so that our boxes match
ultralytics' own prediction of the same weights (``edgeapp models verify``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Per-class offset for class-wise NMS in one pass (ultralytics' ``max_wh``): larger than any
#: model-input coordinate, so boxes of different classes never overlap.
CLASS_OFFSET = 7680.0
#: Most candidates that go into NMS (highest scores first), as in ultralytics.
MAX_NMS = 30000
#: Rows of the IoU matrix computed at once: bounds memory at ``CHUNK * n`` floats.
CHUNK = 512


#: The network's stride: a model input's sides are multiples of it.
STRIDE = 32


@dataclass(frozen=True)
class Letterbox:
    """How a ``height x width`` frame sits in the model input: scale, then pad to
    ``in_h x in_w``."""

    in_h: int
    in_w: int
    gain: float
    new_h: int
    new_w: int
    top: int
    bottom: int
    left: int
    right: int

    @property
    def shape(self) -> tuple[int, int]:
        """The model input ``(height, width)``."""
        return self.in_h, self.in_w


def letterbox(height: int, width: int, size: int) -> Letterbox:
    """Ultralytics' centred letterbox (padding value 114) of a frame whose long side is scaled
    to ``size``: each side is padded to the next multiple of the stride only, as ultralytics'
    ``LetterBox(auto=True)`` does for a prediction, not to a ``size x size`` square. A 16:9
    frame at 320 is fed as 320x192: 40 % fewer pixels than the square, and the CPU time per
    frame falls with them (yolo11n 1.9x, yolo11m 1.9x the frames per second of the square,
    measured with the throughput hint on 2 cores).
    """
    gain = min(size / height, size / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    in_h, in_w = -(-new_h // STRIDE) * STRIDE, -(-new_w // STRIDE) * STRIDE
    dw, dh = (in_w - new_w) / 2, (in_h - new_h) / 2
    return Letterbox(in_h, in_w, gain, new_h, new_w, round(dh - 0.1), round(dh + 0.1),
                     round(dw - 0.1), round(dw + 0.1))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, np.finfo(np.float32).tiny)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first (same result as torchvision's).

    Boxes are taken in score order in chunks of ``CHUNK``. Inside a chunk one IoU matrix is
    computed and the greedy pass visits only rows that overlap something; the chunk's survivors
    then suppress every later box with one more matrix. Python work is per overlapping row,
    numpy work is matrix-at-a-time.
    """
    order = np.argsort(-scores, kind="stable")
    if len(order) < 2:
        return order
    b = boxes[order].astype(np.float32, copy=False)
    n = len(b)
    alive = np.ones(n, bool)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        idx = np.flatnonzero(alive[start:stop]) + start
        if len(idx) == 0:
            continue
        over = np.triu(box_iou(b[idx], b[idx]) > iou_threshold, k=1)
        keep = np.ones(len(idx), bool)
        for row in np.flatnonzero(over.any(axis=1)):
            if keep[row]:
                keep &= ~over[row]
        alive[idx[~keep]] = False
        rest = np.flatnonzero(alive[stop:]) + stop
        if len(rest):
            kept = idx[keep]
            hit = (box_iou(b[kept], b[rest]) > iou_threshold).any(axis=0)
            alive[rest[hit]] = False
    return order[alive]


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-wise NMS in one pass: shift each class's boxes by ``class * CLASS_OFFSET``."""
    shifted = boxes + (classes.astype(np.float32) * CLASS_OFFSET)[:, None]
    return nms(shifted, scores, iou_threshold)


def decode(
    output: np.ndarray, conf: float = 0.25, iou: float = 0.7, max_det: int = 300
) -> np.ndarray:
    """Head output ``(1, 4+nc, A)`` or ``(4+nc, A)`` -> ``(N, 6)`` in model-input pixels."""
    pred = output[0] if output.ndim == 3 else output
    class_scores = pred[4:]
    # The best score of every anchor, the class only of those above ``conf`` (a few dozen of
    # some thousand anchors): the per-frame numpy work stays small next to the inference.
    cand = np.flatnonzero(class_scores.max(axis=0) > conf)
    if len(cand) == 0:
        return np.zeros((0, 6), np.float32)
    cand_scores = class_scores[:, cand]
    best = cand_scores.argmax(axis=0)
    score = cand_scores[best, np.arange(len(cand))]
    if len(cand) > MAX_NMS:
        top = np.argsort(-score, kind="stable")[:MAX_NMS]
        cand, best, score = cand[top], best[top], score[top]
    cx, cy, w, h = pred[:4, cand]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep = batched_nms(boxes, score, best, iou)[:max_det]
    out = np.empty((len(keep), 6), np.float32)
    out[:, :4] = boxes[keep]
    out[:, 4] = score[keep]
    out[:, 5] = best[keep]
    return out


def to_frame(dets: np.ndarray, lb: Letterbox, height: int, width: int) -> np.ndarray:
    """Undo the letterbox in place: model-input pixels -> frame pixels, clipped to the frame."""
    if len(dets):
        dets[:, [0, 2]] -= lb.left
        dets[:, [1, 3]] -= lb.top
        dets[:, :4] /= lb.gain
        dets[:, [0, 2]] = np.clip(dets[:, [0, 2]], 0, width)
        dets[:, [1, 3]] = np.clip(dets[:, [1, 3]], 0, height)
    return dets


def postprocess(
    output: np.ndarray, lb: Letterbox, height: int, width: int, *, conf: float = 0.25,
    iou: float = 0.7, max_det: int = 300,
) -> np.ndarray:
    """Head output of one frame -> ``(N, 6)`` float32 ``x1, y1, x2, y2, score, class``."""
    return to_frame(decode(output, conf, iou, max_det), lb, height, width)
