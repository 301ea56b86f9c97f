"""``edgeapp models verify``: does our detector see what ultralytics sees with the same weights?

On the same held-out synthetic frames, ``Detector`` (OpenVINO IR, our pre/post-processing)
and ultralytics' own ``predict`` of the model's ``.pt`` (PyTorch, its default letterbox, padded
to the stride only like ours: ``rect=True``) must agree on frames already shrunk as the
detector shrinks them (averaged, see ``detector.shrink``; ultralytics' own INTER_LINEAR shrink
of a full frame feeds the graph other pixels), so what is compared is the graph, the decoding
and the NMS, with the boxes brought back to the frame's pixels: matched boxes overlap with
IoU >= 0.9 and have the same class, and a box found by one side only is allowed only when its
score is within ``margin`` of the confidence threshold (FP16 weights move scores by ~1e-3; a
box at 0.251 may be 0.249 on the other side). Both sides are also scored against the generator's
ground truth.

Needs the ``train`` extra (ultralytics + torch) for the reference side; ``compare`` and
``write_card`` are plain numpy / YAML and run anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgeapp.engine.vision.models import ModelInfo
from edgeapp.engine.vision.postprocess import box_iou, letterbox

#: Agreement bars for ``passed``: near-ties in NMS (two anchors within 0.002 of each other)
#: may pick a neighbouring box on one side, so a few matched pairs under 0.9 are expected.
MIN_IOU = 0.9
MIN_IOU_SHARE = 0.97
MIN_CLASS_AGREEMENT = 0.98


def match(
    a: np.ndarray, b: np.ndarray, min_iou: float = 0.5, *, same_class: bool = False,
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs ``(i, j, iou)`` of ``(N, 6)`` detections, highest IoU first."""
    if len(a) == 0 or len(b) == 0:
        return []
    iou = box_iou(a[:, :4].astype(np.float32), b[:, :4].astype(np.float32))
    if same_class:
        iou[a[:, None, 5].astype(int) != b[None, :, 5].astype(int)] = 0.0
    pairs = []
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if np.isfinite(iou[i, j]):
            pairs.append((i, j, float(iou[i, j])))
            iou[i, :] = -np.inf
            iou[:, j] = -np.inf
    return pairs


def compare(
    ours: Sequence[np.ndarray], ref: Sequence[np.ndarray], *, conf: float, margin: float = 0.05,
) -> dict[str, Any]:
    """Agreement of two detectors' ``(N, 6)`` outputs frame by frame (see module docstring)."""
    ious: list[float] = []
    same_class = unmatched_near = unmatched_confident = equal_count = 0
    for a, b in zip(ours, ref, strict=True):
        pairs = match(a, b)
        ious += [iou for _, _, iou in pairs]
        same_class += int(sum(int(a[i, 5]) == int(b[j, 5]) for i, j, _ in pairs))
        equal_count += int(len(a) == len(b))
        matched_a = {i for i, _, _ in pairs}
        matched_b = {j for _, j, _ in pairs}
        lone = [a[i, 4] for i in range(len(a)) if i not in matched_a]
        lone += [b[j, 4] for j in range(len(b)) if j not in matched_b]
        near = int(sum(score < conf + margin for score in lone))
        unmatched_near += near
        unmatched_confident += len(lone) - near
    n_ref = sum(len(b) for b in ref)
    matched = len(ious)
    result = {
        "frames": len(ref), "boxes_ours": sum(len(a) for a in ours), "boxes_ref": n_ref,
        "matched": matched,
        "iou_mean": round(float(np.mean(ious)), 4) if ious else None,
        "iou_min": round(float(np.min(ious)), 4) if ious else None,
        "iou_ge_0_9": round(sum(i >= MIN_IOU for i in ious) / matched, 4) if matched else None,
        "class_agreement": round(same_class / matched, 4) if matched else None,
        "equal_count_frames": round(equal_count / len(ref), 4) if len(ref) else None,
        "unmatched_near_threshold": unmatched_near,
        "unmatched_confident": unmatched_confident,
    }
    iou_share = sum(i >= MIN_IOU for i in ious) / matched if matched else 0.0
    class_share = same_class / matched if matched else 0.0
    result["passed"] = bool(
        matched > 0 and unmatched_confident <= 0.01 * max(n_ref, 1)
        and iou_share >= MIN_IOU_SHARE and class_share >= MIN_CLASS_AGREEMENT)
    return result


def truth_array(truth: Any) -> np.ndarray:
    """A frame's ground truth as ``(N, 6)`` detections with score 1."""
    gt = np.ones((len(truth.boxes), 6), np.float32)
    gt[:, :4] = np.asarray(truth.boxes, np.float32).reshape(-1, 4)
    gt[:, 5] = np.asarray(truth.classes).reshape(-1)
    return gt


def score_against_truth(dets: Sequence[np.ndarray], truths: Sequence[Any]) -> dict[str, float]:
    """Precision / recall at IoU 0.5 with the right class, against the generator's truth."""
    tp = n_pred = n_true = 0
    for d, t in zip(dets, truths, strict=True):
        gt = truth_array(t)
        tp += len(match(d, gt, same_class=True))
        n_pred += len(d)
        n_true += len(gt)
    return {"precision": round(tp / n_pred, 4) if n_pred else 1.0,
            "recall": round(tp / n_true, 4) if n_true else 1.0}


def reference_predictions(
    pt: Path, frames: Sequence[np.ndarray], *, imgsz: int, conf: float, iou: float,
    max_det: int = 300,
) -> list[np.ndarray]:
    """ultralytics' own prediction of ``pt`` (stride-padded letterbox, CPU), as ``(N, 6)``
    arrays."""
    from edgeapp.training.export import require_train_extra

    os.environ.setdefault("YOLO_OFFLINE", "1")
    yolo = require_train_extra()(str(pt))
    out = []
    for frame in frames:
        r = yolo.predict(frame, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det, rect=True,
                         device="cpu", verbose=False)[0].boxes
        out.append(np.concatenate([r.xyxy.numpy(), r.conf.numpy()[:, None],
                                   r.cls.numpy()[:, None]], axis=1).astype(np.float32))
    return out


def shrunk_frames(images: Sequence[np.ndarray], size: int
                  ) -> tuple[list[np.ndarray], list[float]]:
    """Each frame shrunk as the detector shrinks it for input ``size`` (long side ``size``),
    and the factor it was shrunk by: both sides of ``verify`` then only pad it."""
    from edgeapp.engine.vision.detector import shrink

    small, gains = [], []
    for image in images:
        lb = letterbox(*image.shape[:2], size)
        small.append(shrink(image, lb.new_w, lb.new_h))
        gains.append(lb.gain)
    return small, gains


def to_frame_pixels(dets: Sequence[np.ndarray], gains: Sequence[float]) -> list[np.ndarray]:
    """Boxes found on shrunk frames, in the full frames' pixels."""
    out = []
    for d, gain in zip(dets, gains, strict=True):
        d = np.array(d, np.float32, copy=True)
        d[:, :4] /= gain
        out.append(d)
    return out


def verify_model(
    info: ModelInfo, *, frames: int = 50, seed: int = 40000, conf: float = 0.25,
    iou: float = 0.7,
) -> dict[str, Any]:
    """Run both sides on ``frames`` held-out frames and compare them (needs the train extra)."""
    from edgeapp.engine.bench.detector import held_out_frames
    from edgeapp.engine.vision.detector import Detector

    if info.pt_path is None:
        from edgeapp.errors import ModelError

        raise ModelError(f"{info.folder}: no .pt beside the IR; verify compares against it")
    samples = held_out_frames(frames, seed=seed)
    images = [image for image, _ in samples]
    truths = [truth for _, truth in samples]
    with Detector({0: info}, conf=conf, iou=iou) as detector:
        size = detector.input_size
        small, gains = shrunk_frames(images, size)
        ours = to_frame_pixels(detector.detect_batch(small), gains)
    ref = to_frame_pixels(
        reference_predictions(info.pt_path, small, imgsz=size, conf=conf, iou=iou), gains)
    grade = info.grade.name.lower() if info.grade is not None else None
    result = {"model": info.name, "grade": grade,
              "input_size": size, "conf": conf, "iou": iou,
              "frames_seed": seed, **compare(ours, ref, conf=conf),
              "truth_ours": score_against_truth(ours, truths),
              "truth_ultralytics": score_against_truth(ref, truths),
              "reference": f"ultralytics predict of {info.pt_path.name} (rect=True) on the "
                           "frames as the detector shrinks them"}
    return result


def write_card(folder: Path, result: dict[str, Any]) -> None:
    """Add the result as ``verify`` to ``card.yaml`` and a section to ``MODEL_CARD.md``."""
    card_path = folder / "card.yaml"
    card = yaml.safe_load(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    card = card or {}
    card["verify"] = result
    card_path.write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    md = folder / "MODEL_CARD.md"
    text = md.read_text(encoding="utf-8") if md.exists() else f"# {result['model']}\n"
    marker = "\n## Verify: edgeapp detector vs ultralytics\n"
    text = text.split(marker)[0].rstrip("\n") + "\n" + marker + "\n"
    text += "\n".join(f"- **{k}**: {v}" for k, v in result.items()) + "\n"
    md.write_text(text, encoding="utf-8")
