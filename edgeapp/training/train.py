"""Train the demo YOLO11 grades on the synthetic camera and ship them as OpenVINO IR.

Needs the ``train`` extra (ultralytics + torch). Models are built from the YOLO11 yaml and
trained from scratch: nothing is downloaded. Each grade is exported with a dynamic input size
and FP16 weights, evaluated on the held-out test split, and written with a model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
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
    for path in out_dir.glob("*.xml"):  # name the IR after the model folder
        path.rename(out_dir / f"{out_dir.name}.xml")
    for path in out_dir.glob("*.bin"):
        path.rename(out_dir / f"{out_dir.name}.bin")
    return out_dir


def evaluate(model_path: Path, data_yaml: Path, imgsz: int) -> dict[str, float]:
    """mAP50 and mAP50-95 of a model (``.pt`` or IR folder) on the held-out test split."""
    if model_path.is_dir():  # ultralytics recognises an IR folder only by this suffix
        link = Path(tempfile.mkdtemp()) / f"{model_path.name}_openvino_model"
        link.symlink_to(model_path.resolve(), target_is_directory=True)
        model_path = link
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
    runs: Path, models_dir: Path, init: Path | None = None, resume: bool = False,
) -> dict:
    """Train one grade (from scratch, or on from ``init`` weights), ship it with its card.

    ``resume`` continues the grade's interrupted run exactly where its ``last.pt`` stopped
    (same schedule, optimizer state and epoch count), so a long run survives a restart.
    """
    YOLO = _ultralytics()
    name = f"yolo11{letter}-demo"
    started = time.time()
    if resume:
        YOLO(str(runs / name / "weights" / "last.pt")).train(resume=True)
    else:
        model = YOLO(str(init) if init else f"yolo11{letter}.yaml")
        model.train(
            data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu",
            workers=2, project=str(runs), name=name, exist_ok=True, plots=False,
            pretrained=str(init) if init else False, fliplr=0.0,
            close_mosaic=max(1, epochs // 5), patience=epochs, verbose=False, amp=False,
        )
    best = runs / name / "weights" / "best.pt"
    train_minutes = _train_minutes(runs / name) if resume else round(
        (time.time() - started) / 60, 1)
    card = ship_grade(letter, best, data_yaml, counts, epochs=epochs, imgsz=imgsz, batch=batch,
                      models_dir=models_dir, train_minutes=train_minutes)
    if init:  # say what the run started from, so the card tells the whole training
        card = {**card, "continued_from": init.name}
        write_card(models_dir / name, card)
    return card


def ship_grade(
    letter: str, best: Path, data_yaml: Path, counts: dict, *, epochs: int, imgsz: int,
    batch: int, models_dir: Path, train_minutes: float | None,
) -> dict:
    """Export a trained grade, measure it on the test split and write its card."""
    name = f"yolo11{letter}-demo"
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


def _train_minutes(run: Path) -> float | None:
    """Training time recorded by ultralytics in the run's results.csv (elapsed seconds per
    epoch); a resumed run starts its clock again, so each stretch's last time is added."""
    try:
        rows = (run / "results.csv").read_text().strip().splitlines()[1:]
        times = [float(row.split(",")[1]) for row in rows]
    except (OSError, IndexError, ValueError):
        return None
    stretches = [t for t, after in zip(times, times[1:], strict=False) if after < t]
    return round((sum(stretches) + times[-1]) / 60, 1) if times else None


def _train_images(data: Path) -> int | None:
    try:
        return int(yaml.safe_load((data / "counts.yaml").read_text())["train"]["images"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


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
    p.add_argument("--init", type=Path, default=None,
                   help="continue from these weights (e.g. a run's best.pt) instead of scratch")
    p.add_argument("--resume", action="store_true",
                   help="continue each grade's interrupted run from its last.pt")
    p.add_argument("--ship-only", action="store_true",
                   help="do not train: export, measure and card the runs' existing best.pt")
    args = p.parse_args(argv)
    data_yaml = args.data / "data.yaml"
    if not data_yaml.exists() or _train_images(args.data) != args.train_images:
        render_dataset(load_catalog(), args.data, DatasetSpec(train=args.train_images))
    counts = yaml.safe_load((args.data / "counts.yaml").read_text())
    epochs = args.epochs * len(args.grades) if len(args.epochs) == 1 else args.epochs
    for letter, ep in zip(args.grades, epochs, strict=False):
        if args.ship_only:
            run = args.runs / f"yolo11{letter}-demo"
            card = ship_grade(letter, run / "weights" / "best.pt", data_yaml, counts, epochs=ep,
                              imgsz=args.imgsz, batch=args.batch, models_dir=args.models,
                              train_minutes=_train_minutes(run))
            print(json.dumps(card), flush=True)
            continue
        card = train_grade(letter, data_yaml, counts, epochs=ep, imgsz=args.imgsz,
                           batch=args.batch, runs=args.runs, models_dir=args.models,
                           init=args.init, resume=args.resume)
        print(json.dumps(card), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
