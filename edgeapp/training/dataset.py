"""Render a YOLO detection dataset from the synthetic camera's ground truth.

Train, validation and held-out test splits come from disjoint seeds, so the model card's
test figures are measured on scenes (orders, placements, lighting) the model never saw.
Needs only numpy and OpenCV: the dataset can be made without the ``train`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from edgeapp.engine.orders.catalog import Catalog
from edgeapp.engine.sources.synthetic import SyntheticScene

SPLIT_SEEDS = {"train": 10_000, "val": 20_000, "test": 30_000}


@dataclass(frozen=True)
class DatasetSpec:
    """How many images of each split, rendered at what size, saved at what width."""

    train: int = 500
    val: int = 100
    test: int = 150
    width: int = 1280
    height: int = 720
    save_width: int = 640
    order_frame_rate: float = 0.22  # share of frames with an order that are kept
    empty_frame_rate: float = 0.04  # share of empty-counter frames that are kept


def render_split(
    catalog: Catalog, root: Path, split: str, count: int, spec: DatasetSpec
) -> int:
    """Write ``count`` images and YOLO label files of one split; returns the label count."""
    img_dir, lbl_dir = root / "images" / split, root / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    base = SPLIT_SEEDS[split]
    written = labels = 0
    station = 0
    while written < count:
        seed = base + station
        scene = SyntheticScene(catalog, width=spec.width, height=spec.height, seed=seed,
                               wrong_order_rate=0.3, station_id=f"{split}-{station}")
        pick = np.random.default_rng([seed, 0x5E1])
        for _ in range(900):  # about ten orders per scene, then a fresh scene
            truth = scene.truth()
            rate = spec.order_frame_rate if truth.order_id else spec.empty_frame_rate
            if pick.random() >= rate:
                scene.skip()
                continue
            image, truth = scene.render()
            scale = spec.save_width / spec.width
            small = cv2.resize(image, (spec.save_width, round(spec.height * scale)),
                               interpolation=cv2.INTER_AREA)
            name = f"{split}_{seed}_{truth.frame_index:06d}"
            cv2.imwrite(str(img_dir / f"{name}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 90])
            rows = []
            for (x1, y1, x2, y2), cls in zip(truth.boxes, truth.classes, strict=False):
                cx, cy = (x1 + x2) / 2 / spec.width, (y1 + y2) / 2 / spec.height
                bw, bh = (x2 - x1) / spec.width, (y2 - y1) / spec.height
                rows.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
            (lbl_dir / f"{name}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
            labels += len(rows)
            written += 1
            if written >= count:
                break
        station += 1
    return labels


def render_dataset(catalog: Catalog, root: Path, spec: DatasetSpec | None = None) -> Path:
    """Render all three splits under ``root`` and write ``data.yaml``; returns its path."""
    spec = spec or DatasetSpec()
    counts = {}
    for split, n in (("train", spec.train), ("val", spec.val), ("test", spec.test)):
        counts[split] = (n, render_split(catalog, root, split, n, spec))
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "names": dict(enumerate(catalog.class_names)),
    }
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "counts.yaml").write_text(yaml.safe_dump(
        {k: {"images": v[0], "boxes": v[1]} for k, v in counts.items()}))
    return path
