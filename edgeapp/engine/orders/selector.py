"""Pick the frames of an order that best show what is in the bag."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# A thumbnail cell must move by more than this many grey levels (its frame's mean brought to
# 128) for two frames to show different scenes. Sensor noise averages out over a cell, and a
# global brightness change is normalised away; an item put down or a hand moves many cells by
# tens of levels. On the synthetic camera the same scene never moves a cell by 10.
SCENE_CHANGE = 12.0
_THUMB_SIZE = (64, 36)


@dataclass(frozen=True)
class CandidateFrame:
    """A frame of an order with its detections (``(N, 6)``: x1, y1, x2, y2, score, class).

    ``still_s`` is how long the scene stayed as this frame shows it (0 for a passing moment,
    such as a hand moving over the bag); the order tracker fills it in when the order ends.
    """

    seq: int
    capture_ts: float
    image: np.ndarray
    detections: np.ndarray
    thumb: np.ndarray = field(compare=False, repr=False)
    still_s: float = 0.0


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A small grey copy, brightness-normalised, to tell frames of the same scene apart."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, _THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    return thumb * (128.0 / max(float(thumb.mean()), 1.0))


def same_scene(a: np.ndarray, b: np.ndarray, threshold: float = SCENE_CHANGE) -> bool:
    """Whether two thumbnails show the same scene (no cell moved by more than ``threshold``)."""
    return float(np.abs(a - b).max()) <= threshold


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
    min_run_s: float = 0.0,
    min_still_s: float | None = None,
) -> list[CandidateFrame]:
    """The top-``k`` frames of an order: the settled bag, every detected class, no duplicates.

    With ``min_still_s``, frames whose scene stayed as shown at least that long (no hand
    moving in it, see ``CandidateFrame.still_s``) come first, and the first pick is the last
    of them: the bag as it was when it left, whatever the station's detector (running at the
    stream's settings) made of it. Then, greedily, each pick maximises, in this order:
    - still (as above);
    - new: not the same scene as a frame already picked (see :func:`same_scene`);
    - the classes it adds to those covered, then its items: with ``min_run_s`` > 0 only
      steady detections count (:func:`steady_counts`), a class up to its steady number;
    - clean: no more of a class than stayed steady (a hand read as an item);
    - the summed score of its detections, then lateness.
    A frame where the detector saw no item (only the ticket) can be picked: the VLM looks
    for itself.
    """
    steady = steady_counts(candidates, ticket_class, min_run_s) if min_run_s > 0 else None
    scored = []
    for cand in candidates:
        counts = item_counts(cand.detections, ticket_class)
        if steady is not None:
            capped = {c: min(n, steady[c]) for c, n in counts.items() if c in steady}
            clean = capped == counts
            counts = capped
        else:
            clean = True
        keep = cand.detections[:, 5] != ticket_class if ticket_class is not None else slice(None)
        still = min_still_s is None or cand.still_s >= min_still_s
        scored.append((cand, set(counts), still, sum(counts.values()), clean,
                       float(cand.detections[keep, 4].sum())))
    picked: list[CandidateFrame] = []
    covered: set[int] = set()
    settled = [entry for entry in scored if entry[2]] if min_still_s is not None else []
    if settled and k > 0:
        last = max(settled, key=lambda entry: entry[0].seq)
        scored.remove(last)
        picked.append(last[0])
        covered |= last[1]
    while len(picked) < k and scored:
        def gain(entry: tuple, covered: frozenset[int] = frozenset(covered)) -> tuple:
            cand, classes, still, items, clean, score = entry
            new = not any(same_scene(cand.thumb, p.thumb) for p in picked)
            return (still, new, len(classes - covered), items, clean, score, cand.seq)

        best = max(scored, key=gain)
        scored.remove(best)
        picked.append(best[0])
        covered |= best[1]
    return sorted(picked, key=lambda c: c.seq)
