"""Train the demo YOLO11 grades on the synthetic camera and ship them as OpenVINO IR.

Needs the ``train`` extra (ultralytics + torch). Models are built from the YOLO11 yaml and
trained from scratch: nothing is downloaded. Each grade is exported with a dynamic input size
and FP16 weights, evaluated on the held-out test split, and written with a model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import yaml

from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.training.dataset import DatasetSpec, render_dataset

GRADES = {"n": "low", "s": "medium", "m": "high"}
ROOT = Path(__file__).resolve().parents[2]


def _ultralytics():  # imported here: the train extra is optional
    try:
        from ultralytics import YOLO
    except ImportError as exc:  # pragma: no cover - depends on the install
        from edgeapp.errors import MissingExtraError

        raise MissingExtraError(
            "training needs the 'train' extra: pip install 'edgeapp[train]'"
        ) from exc
    return YOLO


def export_openvino(weights: Path, out_dir: Path, imgsz: int) -> Path:
    """Export a ``.pt`` to an OpenVINO IR folder (dynamic input, FP16) at ``out_dir``."""
    yolo = _ultralytics()(str(weights))
    exported = Path(yolo.export(format="openvino", dynamic=True, half=True, imgsz=imgsz))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(exported, out_dir)
    return out_dir


def evaluate(model_path: Path, data_yaml: Path, imgsz: int) -> dict[str, float]:
    """mAP50 and mAP50-95 of a model (``.pt`` or IR folder) on the held-out test split."""
    metrics = _ultralytics()(str(model_path), task="detect").val(
        data=str(data_yaml), split="test", imgsz=imgsz, batch=8, plots=False, verbose=False,
        workers=0,
    )
    return {"map50": round(float(metrics.box.map50), 4),
            "map50_95": round(float(metrics.box.map), 4)}


def write_card(folder: Path, card: dict) -> None:
    """Write ``card.yaml`` (machine-readable) and ``MODEL_CARD.md`` into a model folder."""
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    lines = [f"# {card['name']} — grade {card['grade'].upper()}", "",
             "YOLO11 detector trained from scratch on the synthetic order-station camera.", ""]
    lines += [f"- **{k}**: {v}" for k, v in card.items() if k != "name"]
    (folder / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")


def train_grade(
    letter: str, data_yaml: Path, counts: dict, *, epochs: int, imgsz: int, batch: int,
    runs: Path, models_dir: Path,
) -> dict:
    """Train one grade, export it, measure it on the test split, write its card."""
    YOLO = _ultralytics()
    name = f"yolo11{letter}-demo"
    started = time.time()
    model = YOLO(f"yolo11{letter}.yaml")
    model.train(
        data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu",
        workers=2, project=str(runs), name=name, exist_ok=True, plots=False, pretrained=False,
        fliplr=0.0, close_mosaic=max(1, epochs // 5), patience=epochs, verbose=False, amp=False,
    )
    best = runs / name / "weights" / "best.pt"
    train_minutes = round((time.time() - started) / 60, 1)
    folder = models_dir / name
    export_openvino(best, folder, imgsz)
    shutil.copy2(best, folder / f"{name}.pt")
    test = evaluate(folder, data_yaml, imgsz)
    card = {
        "name": name, "grade": GRADES[letter], "architecture": f"yolo11{letter}",
        "classes": list(load_catalog().class_names), "input_size": imgsz,
        "dynamic_input": True, "precision": "FP16", "epochs": epochs, "batch": batch,
        "dataset": counts, "train_minutes_cpu": train_minutes,
        "test_map50": test["map50"], "test_map50_95": test["map50_95"],
        "measured_with": "ultralytics val on the exported OpenVINO IR, held-out test split",
    }
    write_card(folder, card)
    return card


def main(argv: list[str] | None = None) -> int:
    """``python -m edgeapp.training.train``: render the dataset, train and ship grades."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--grades", nargs="+", default=["n", "s", "m"], choices=list(GRADES))
    p.add_argument("--epochs", type=int, nargs="+", default=[20],
                   help="epochs per grade (one value for all, or one per grade)")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--data", type=Path, default=ROOT / "datasets" / "synthetic")
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--models", type=Path, default=ROOT / "resources" / "models")
    p.add_argument("--train-images", type=int, default=DatasetSpec.train)
    args = p.parse_args(argv)
    data_yaml = args.data / "data.yaml"
    if not data_yaml.exists():
        render_dataset(load_catalog(), args.data, DatasetSpec(train=args.train_images))
    counts = yaml.safe_load((args.data / "counts.yaml").read_text())
    epochs = args.epochs * len(args.grades) if len(args.epochs) == 1 else args.epochs
    for letter, ep in zip(args.grades, epochs):
        card = train_grade(letter, data_yaml, counts, epochs=ep, imgsz=args.imgsz,
                           batch=args.batch, runs=args.runs, models_dir=args.models)
        print(json.dumps(card), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
