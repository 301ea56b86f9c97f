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
    return {int(v): int(c) for v, c in zip(values, counts, strict=False)}


def steady_counts(candidates: list[CandidateFrame], ticket_class: int | None,
                  min_run_s: float, max_gap_s: float = 0.5) -> dict[int, int]:
    """Per class, the most instances seen without a break for at least ``min_run_s``.

    What is in the bag stays there until the bag leaves; a hand passing over the bag that the
    detector takes for an item, or an item it double-counts for a moment, does not. A run
    breaks at a frame with fewer instances or at a gap of more than ``max_gap_s``.
    """
    frames = sorted(candidates, key=lambda c: c.seq)
    counts = [item_counts(c.detections, ticket_class) for c in frames]
    steady: dict[int, int] = {}
    for cls in {c for frame_counts in counts for c in frame_counts}:
        for level in sorted({fc[cls] for fc in counts if cls in fc}, reverse=True):
            best, start, prev = 0.0, None, None
            for frame, frame_counts in zip(frames, counts, strict=True):
                if frame_counts.get(cls, 0) < level:
                    start = None
                    continue
                if start is None or prev is None or frame.capture_ts - prev > max_gap_s:
                    start = frame.capture_ts
                prev = frame.capture_ts
                best = max(best, prev - start)
            if best >= min_run_s:
                steady[cls] = level
                break
    return steady


def select_frames(
    candidates: list[CandidateFrame],
    k: int,
    ticket_class: int | None,
    duplicate_threshold: float = 2.0,
    min_run_s: float = 0.0,
) -> list[CandidateFrame]:
    """The top-``k`` frames by item detections, covering every detected class, no near-duplicates.

    Greedy: each pick maximises (classes not yet covered, items in the frame, summed score);
    a frame whose thumbnail is within ``duplicate_threshold`` grey levels (mean absolute
    difference) of a picked frame is skipped while others remain. With ``min_run_s`` > 0,
    only steady detections count (:func:`steady_counts`): frames showing more of a class than
    stayed steady (a hand read as an item) come last, and only steady classes need covering.
    """
    steady = steady_counts(candidates, ticket_class, min_run_s) if min_run_s > 0 else None
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
        def gain(entry: tuple[CandidateFrame, dict[int, int], float],
                 covered: frozenset[int] = frozenset(covered)) -> tuple:
            cand, counts, score = entry
            dup = any(np.abs(cand.thumb - p[0].thumb).mean() < duplicate_threshold
                      for p in picked)
            if steady is None:
                return (not dup, len(set(counts) - covered), sum(counts.values()), score,
                        cand.seq)
            clean = all(n <= steady.get(c, 0) for c, n in counts.items())
            return (clean, not dup, len(set(counts) & set(steady) - covered),
                    sum(counts.values()), score, cand.seq)

        best = max(scored, key=gain)
        scored.remove(best)
        picked.append(best)
        covered |= set(best[1])
    return sorted((p[0] for p in picked), key=lambda c: c.seq)
