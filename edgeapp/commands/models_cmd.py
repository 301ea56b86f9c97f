"""``edgeapp models list|export|verify|train-demo``: the detector models.

``list`` needs only the base install. ``export``, ``verify`` and ``train-demo`` need the
``train`` extra (ultralytics + torch). ``verify`` can run from an environment without it and
hand the work to one that has it: ``edgeapp models verify --python /path/to/venv/bin/python``
re-runs the same command with that interpreter (which must have edgeapp installed too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vision.models import ModelInfo, installed_models, resolve_grades
from edgeapp.errors import InputError, ModelError
from edgeapp.training.export import require_train_extra

NAME = "models"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``models`` and its actions."""
    p = subparsers.add_parser(NAME, help="list, export, verify or train the detector models")
    sub = p.add_subparsers(dest="models_action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="the installed models: grade, classes, input size, size")
    ls.add_argument("--json", action="store_true", help="one JSON object per model")
    _add_path(ls)

    ex = sub.add_parser("export", help="export a YOLO .pt to an OpenVINO model folder (train)")
    ex.add_argument("pt", type=Path, help="the ultralytics .pt weights")
    ex.add_argument("--imgsz", type=int, help="input size (default: the .pt's training size)")
    ex.add_argument("--out", type=Path, help="output folder (default: beside the .pt)")
    ex.add_argument("--grade", help="low|medium|high (or n|s|m) to write into card.yaml")

    ve = sub.add_parser(
        "verify", help="compare our detector with ultralytics on the same frames (train)",
        description="Run the detector and ultralytics' own predict of the model's .pt on the "
        "same held-out synthetic frames and print the agreement as JSON (one line per model).")
    ve.add_argument("--grade", help="only the model serving this grade (n|s|m, low|...)")
    ve.add_argument("--frames", type=int, default=50, help="held-out frames (default 50)")
    ve.add_argument("--seed", type=int, default=40000, help="first scene seed (>= 40000)")
    ve.add_argument("--conf", type=float, help="score threshold (default: config's)")
    ve.add_argument("--iou", type=float, help="NMS IoU threshold (default: config's)")
    ve.add_argument("--write-card", action="store_true",
                    help="add the result to the model's card.yaml and MODEL_CARD.md")
    ve.add_argument("--python", metavar="PYTHON",
                    help="run with this interpreter (one that has the train extra)")
    _add_path(ve)

    # prefix_chars="+": this parser knows no options, so every '--x' after 'train-demo'
    # (its --help too) reaches edgeapp.training.train's own parser untouched.
    tr = sub.add_parser("train-demo", help="train and ship the demo models (train)",
                        add_help=False, prefix_chars="+")
    tr.add_argument("train_args", nargs=argparse.REMAINDER)


def _add_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", action="append", type=Path, default=[], metavar="DIR",
                   help="also look here (a models folder, a model folder or an .xml); "
                        "the config's models.path and the shipped models are always included")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    action = args.models_action
    if action == "list":
        return _list(args)
    if action == "export":
        from edgeapp.training.export import export_model

        info = export_model(args.pt, args.out, imgsz=args.imgsz, grade=args.grade)
        print(json.dumps(info.summary()))
        return 0
    if action == "verify":
        return _verify(args)
    require_train_extra()
    from edgeapp.training.train import main as train_main

    return int(train_main(list(args.train_args)) or 0)


def _models(args: argparse.Namespace) -> list[ModelInfo]:
    extra: list[Path] = list(args.path)
    cfg = getattr(args, "cfg", None)
    if cfg is not None and getattr(cfg, "models", None) is not None:
        extra.append(Path(cfg.models.path))
    return installed_models(extra)


def _list(args: argparse.Namespace) -> int:
    models = _models(args)
    if args.json:
        for info in models:
            print(json.dumps(info.summary()))
        return 0
    if not models:
        print("no models installed")
        return 0
    print(f"{'NAME':<22} {'GRADE':<7} {'INPUT':>5} {'SIZE MB':>7} {'PREC':<5} CLASSES")
    for info in models:
        grade = info.grade.name.lower() if info.grade is not None else "-"
        names = ", ".join(info.classes[:4]) + (", …" if len(info.classes) > 4 else "")
        if info.problem:
            print(f"{info.name:<22} BROKEN: {info.problem}")
            continue
        print(f"{info.name:<22} {grade:<7} {info.input_size:>5} {info.size_mb:>7.1f} "
              f"{info.precision:<5} {len(info.classes)}: {names}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    if args.python:
        return _reexec(args)
    require_train_extra()
    from edgeapp.training.verify import verify_model, write_card

    if args.frames < 1:
        raise InputError(f"--frames: must be >= 1, got {args.frames}")
    cfg_models = getattr(getattr(args, "cfg", None), "models", None)
    conf = args.conf if args.conf is not None else getattr(cfg_models, "conf_threshold", 0.25)
    iou = args.iou if args.iou is not None else getattr(cfg_models, "iou_threshold", 0.7)
    models = [m for m in _models(args) if m.problem is None]
    if args.grade:
        grades = resolve_grades(models)
        grade = Grade.parse(args.grade)
        models = [grades.models[grade]]
        if grade in grades.fallbacks:
            print(f"note: {grades.fallbacks[grade]}", file=sys.stderr)
    models = [m for m in models if m.pt_path is not None]
    if not models:
        raise ModelError("no installed model has its .pt beside it: nothing to verify against")
    ok = True
    for info in models:
        result = verify_model(info, frames=args.frames, seed=args.seed, conf=conf, iou=iou)
        if args.write_card:
            write_card(info.folder, result)
        ok &= bool(result["passed"])
        print(json.dumps(result), flush=True)
    return 0 if ok else 1


def _reexec(args: argparse.Namespace) -> int:
    cmd = [args.python, "-m", "edgeapp"]
    if getattr(args, "config", None):
        cmd += ["--config", str(args.config)]
    cmd += ["models", "verify", "--frames", str(args.frames), "--seed", str(args.seed)]
    for flag, value in (("--grade", args.grade), ("--conf", args.conf), ("--iou", args.iou)):
        if value is not None:
            cmd += [flag, str(value)]
    for path in args.path:
        cmd += ["--path", str(path)]
    if args.write_card:
        cmd.append("--write-card")
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:
        raise InputError(f"--python {args.python}: cannot run it ({exc.strerror})") from exc
