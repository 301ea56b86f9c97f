"""Pick the frames of an order that best show what is in the bag."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class CandidateFrame:
    """A frame of an order with its detections (``(N, 6)``: x1, y1, x2, y2, score, class)."""

    seq: int
    capture_ts: float
    image: np.ndarray
    detections: np.ndarray
    thumb: np.ndarray = field(compare=False, repr=False)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A tiny grey copy used to tell near-duplicate frames apart."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)


def item_counts(detections: np.ndarray, ticket_class: int | None) -> dict[int, int]:
    """Detections per class in one frame, the ticket left out."""
    classes = detections[:, 5].astype(np.int64)
    if ticket_class is not None:
        classes = classes[classes != ticket_class]
    values, counts = np.unique(classes, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def select_frames(
    candidates: list[CandidateFrame],
    k: int,
    ticket_class: int | None,
    duplicate_threshold: float = 2.0,
) -> list[CandidateFrame]:
    """The top-``k`` frames by item detections, covering every detected class, no near-duplicates.

    Greedy: each pick maximises (classes not yet covered, items in the frame, summed score);
    a frame whose thumbnail is within ``duplicate_threshold`` grey levels (mean absolute
    difference) of a picked frame is skipped while others remain.
    """
    scored = []
    for cand in candidates:
        counts = item_counts(cand.detections, ticket_class)
        if not counts:
            continue
        keep = cand.detections[:, 5] != ticket_class if ticket_class is not None else slice(None)
        scored.append((cand, counts, float(cand.detections[keep, 4].sum())))
    picked: list[tuple[CandidateFrame, dict[int, int], float]] = []
    covered: set[int] = set()
    while len(picked) < k and scored:
        def gain(entry: tuple[CandidateFrame, dict[int, int], float]) -> tuple:
            cand, counts, score = entry
            dup = any(np.abs(cand.thumb - p[0].thumb).mean() < duplicate_threshold
                      for p in picked)
            return (not dup, len(set(counts) - covered), sum(counts.values()), score, cand.seq)

        best = max(scored, key=gain)
        scored.remove(best)
        picked.append(best)
        covered |= set(best[1])
    return sorted((p[0] for p in picked), key=lambda c: c.seq)
