"""``edgeapp models export``: a YOLO ``.pt`` -> an OpenVINO IR model folder edgeapp can load.

The folder is what ultralytics exports (``<name>.xml``/``.bin``, ``metadata.yaml``; dynamic
input, FP16 weights) plus the ``.pt`` itself (``models verify`` compares against it) and a
``card.yaml`` with the grade and input size. Needs the ``train`` extra.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vision.models import ModelInfo, inspect_model
from edgeapp.errors import InputError, MissingExtraError

DEFAULT_IMGSZ = 640
TRAIN_EXTRA = "this command needs the 'train' extra: pip install 'edgeapp[train]'"


def require_train_extra() -> Any:
    """ultralytics' ``YOLO`` class, or MissingExtraError with the one line that says why."""
    try:
        from ultralytics import YOLO
    except ModuleNotFoundError as exc:
        raise MissingExtraError(TRAIN_EXTRA) from exc
    return YOLO


def training_size(pt: Path) -> int:
    """The image size the ``.pt`` was trained at (its ``train_args``), else 640."""
    import torch

    ckpt = torch.load(str(pt), map_location="cpu", weights_only=False)
    size = (ckpt.get("train_args") or {}).get("imgsz") if isinstance(ckpt, dict) else None
    return int(size) if isinstance(size, int) else DEFAULT_IMGSZ


def export_model(
    pt: Path, out: Path | None = None, *, imgsz: int | None = None, grade: str | None = None,
) -> ModelInfo:
    """Export ``pt`` into ``out`` (default: a folder named after it, beside it)."""
    from edgeapp.training.train import export_openvino

    require_train_extra()
    pt = Path(pt).expanduser().resolve()
    if not pt.is_file() or pt.suffix != ".pt":
        raise InputError(f"{pt}: expected an ultralytics .pt file")
    size = imgsz or training_size(pt)
    if size % 32 or size < 32:
        raise InputError(f"--imgsz: must be a multiple of 32, got {size}")
    out = Path(out).expanduser().resolve() if out else pt.with_suffix("")
    export_openvino(pt, out, size)
    shutil.copy2(pt, out / pt.name)
    meta = yaml.safe_load((out / "metadata.yaml").read_text(encoding="utf-8")) or {}
    names = meta.get("names") or {}
    card = {"name": out.name, "input_size": size, "dynamic_input": True, "precision": "FP16",
            "classes": [str(names[k]) for k in sorted(names)] if isinstance(names, dict)
            else list(names), "source": pt.name}
    if grade is not None:
        card["grade"] = Grade.parse(grade).name.lower()
    (out / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return inspect_model(out)
