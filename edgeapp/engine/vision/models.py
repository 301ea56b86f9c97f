"""Which detector models are installed, what they are, and which one serves each grade.

A model is an OpenVINO IR folder as ultralytics exports it (``<name>.xml``, ``<name>.bin``,
``metadata.yaml`` with ``names`` and ``imgsz``), optionally with the project's ``card.yaml``
(``grade``, ``input_size``, ``classes``, ``precision``) and the ``<name>.pt`` it came from; or
a single ``.xml`` path. Discovery reads only small text files; :func:`read_detector` reads
the weights and checks that the network really is a YOLO detection head.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edgeapp import paths
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import ModelError

if TYPE_CHECKING:  # openvino is imported where models are read
    import openvino as ov

log = logging.getLogger(__name__)

#: Training size assumed when neither card.yaml nor metadata.yaml nor the IR tells it.
DEFAULT_INPUT_SIZE = 640
_NAME_GRADE = re.compile(r"yolo(?:v?8|11|v?11)?([nsmlx])(?![a-z])", re.IGNORECASE)


@dataclass(frozen=True)
class ModelInfo:
    """What one installed detector model is; ``problem`` says why it cannot be used."""

    name: str
    path: Path  # the .xml
    grade: Grade | None
    classes: tuple[str, ...]
    input_size: int
    size_mb: float
    precision: str
    pt_path: Path | None = None
    card: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    problem: str | None = None

    @property
    def folder(self) -> Path:
        """The folder that holds the IR (and card.yaml, the .pt)."""
        return self.path.parent

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly row for ``edgeapp models list``."""
        return {
            "name": self.name, "grade": self.grade.name.lower() if self.grade is not None else None,
            "classes": len(self.classes), "class_names": list(self.classes),
            "input_size": self.input_size, "size_mb": self.size_mb,
            "precision": self.precision, "path": str(self.path), "problem": self.problem,
        }


@dataclass(frozen=True)
class GradeMap:
    """The model that serves each grade, and why a grade is served by another grade's model."""

    models: Mapping[Grade, ModelInfo]
    fallbacks: Mapping[Grade, str]


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: not readable YAML ({exc.__class__.__name__})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping, got {type(data).__name__}")
    return data


def _find_xml(folder: Path) -> Path:
    xmls = sorted(folder.glob("*.xml"))
    if not xmls:
        raise ModelError(f"{folder}: no OpenVINO .xml model in this folder")
    if len(xmls) == 1:
        return xmls[0]
    stem = folder.name.removesuffix("_openvino_model")
    for xml in xmls:
        if xml.stem == stem:
            return xml
    raise ModelError(f"{folder}: several .xml files ({', '.join(x.name for x in xmls)}); "
                     "point at one of them")


def _classes(meta: Mapping[str, Any], card: Mapping[str, Any], where: Path) -> tuple[str, ...]:
    names = meta.get("names", card.get("classes"))
    if names is None:
        return ()
    if isinstance(names, Mapping):
        try:
            ordered = sorted(names.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: class ids in 'names' must be integers") from exc
        if [int(k) for k, _ in ordered] != list(range(len(ordered))):
            raise ModelError(f"{where}: class ids in 'names' must be 0..n-1")
        return tuple(str(v) for _, v in ordered)
    if isinstance(names, list | tuple):
        return tuple(str(v) for v in names)
    raise ModelError(f"{where}: 'names' must be a list or a mapping of id to name")


def _input_size(meta: Mapping[str, Any], card: Mapping[str, Any], where: Path) -> int:
    value = card.get("input_size", meta.get("imgsz", DEFAULT_INPUT_SIZE))
    if isinstance(value, list | tuple) and value:
        value = max(value)  # ultralytics writes [h, w]; a non-square model's long side
    if not isinstance(value, int) or isinstance(value, bool) or value < 32:
        raise ModelError(f"{where}: input size must be an integer >= 32, got {value!r}")
    return value


def _grade(name: str, card: Mapping[str, Any], where: Path) -> Grade | None:
    if "grade" in card:
        try:
            return Grade.parse(card["grade"])
        except Exception as exc:
            raise ModelError(f"{where}: grade must be low, medium or high, "
                             f"got {card['grade']!r}") from exc
    match = _NAME_GRADE.search(name)
    return Grade.parse(match.group(1).lower()) if match else None


def _precision(xml: Path, card: Mapping[str, Any]) -> str:
    if "precision" in card:
        return str(card["precision"])
    text = xml.read_text(encoding="utf-8", errors="replace")
    if "FakeQuantize" in text or 'element_type="i8"' in text or 'element_type="u8"' in text:
        return "INT8"
    return "FP16" if 'element_type="f16"' in text else "FP32"


def inspect_model(path: str | Path) -> ModelInfo:
    """Describe the model at ``path`` (an IR folder or an ``.xml``) from its files alone."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model not found: {path}")
    xml = path if path.is_file() else _find_xml(path)
    if xml.suffix.lower() != ".xml":
        raise ModelError(f"{xml}: a model is an OpenVINO .xml (with its .bin) or their folder")
    bin_path = xml.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelError(f"{xml}: its weights file {bin_path.name} is missing")
    folder = xml.parent
    meta = _read_yaml(folder / "metadata.yaml")
    card = _read_yaml(folder / "card.yaml")
    name = str(card.get("name") or (folder.name.removesuffix("_openvino_model")
                                    if path.is_dir() else xml.stem))
    pts = [folder / f"{xml.stem}.pt", folder / f"{name}.pt"]
    pts = [p for p in pts if p.is_file()] or sorted(folder.glob("*.pt"))[:1]
    pt = pts[0] if pts else None
    return ModelInfo(
        name=name, path=xml, grade=_grade(name, card, folder / "card.yaml"),
        classes=_classes(meta, card, folder / "metadata.yaml"),
        input_size=_input_size(meta, card, folder),
        size_mb=round((xml.stat().st_size + bin_path.stat().st_size) / 1e6, 1),
        precision=_precision(xml, card), pt_path=pt, card=card,
    )


def discover(models_dir: str | Path) -> list[ModelInfo]:
    """Every model under ``models_dir`` (a folder of model folders, one model folder, or an
    ``.xml``), sorted by grade then name. Broken ones are listed with their ``problem``."""
    root = Path(models_dir).expanduser()
    if not root.exists():
        raise ModelError(f"models folder not found: {root}")
    if root.is_file() or any(root.glob("*.xml")):
        return [inspect_model(root)]
    found: list[ModelInfo] = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            found.append(inspect_model(child))
        except ModelError as exc:
            if any(child.iterdir()):  # an empty folder is not a broken model
                found.append(ModelInfo(child.name, child, None, (), 0, 0.0, "?",
                                       problem=str(exc)))
    return sorted(found, key=lambda m: (m.grade is None, m.grade or 0, m.name))


def installed_models(extra: Iterable[str | Path] = ()) -> list[ModelInfo]:
    """The models in ``extra`` (e.g. config ``models.path``) first, then the shipped ones."""
    seen: set[Path] = set()
    found: list[ModelInfo] = []
    for where in [*extra, paths.shipped_models_dir()]:
        where = Path(where).expanduser()
        if not where.exists():
            continue
        for info in discover(where):
            if info.path.resolve() not in seen:
                seen.add(info.path.resolve())
                found.append(info)
    return found


def resolve_grades(models: Iterable[ModelInfo]) -> GradeMap:
    """Map LOW/MEDIUM/HIGH to models; a missing grade uses the nearest one (the lower on a
    tie: faster keeps the SLOs). The first usable model of a grade wins; models without a
    grade serve every grade only when no model has one."""
    usable = [m for m in models if m.problem is None]
    if not usable:
        raise ModelError("no usable detector model found")
    by_grade: dict[Grade, ModelInfo] = {}
    for info in usable:
        if info.grade is not None:
            by_grade.setdefault(info.grade, info)
    chosen: dict[Grade, ModelInfo] = {}
    fallbacks: dict[Grade, str] = {}
    for grade in Grade:
        if grade in by_grade:
            chosen[grade] = by_grade[grade]
        elif by_grade:
            near = min(by_grade, key=lambda g: (abs(g - grade), g))
            chosen[grade] = by_grade[near]
            fallbacks[grade] = (f"no {grade.name} model; using {near.name} "
                                f"({by_grade[near].name})")
        else:
            chosen[grade] = usable[0]
            fallbacks[grade] = f"no graded models; {usable[0].name} serves {grade.name}"
    return GradeMap(chosen, fallbacks)


def read_detector(info: ModelInfo, core: ov.Core) -> tuple[ov.Model, tuple[str, ...]]:
    """Read the IR and check it is a YOLO detector; returns the model and its class names.

    A detector has one image input ``(1, 3, H, W)`` and a first output ``(1, 4 + nc, anchors)``
    with ``nc`` matching the class names when they are known.
    """
    try:
        model = core.read_model(str(info.path))
    except Exception as exc:  # openvino raises RuntimeError with a long multi-line text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{info.path}: cannot read this OpenVINO model ({first[:200]})") from exc
    if len(model.inputs) != 1:
        raise ModelError(f"{info.path}: not a detector: {len(model.inputs)} inputs, expected 1 "
                         "image input (1, 3, H, W)")
    size = info.input_size
    try:
        model.reshape({model.input(0): [1, 3, size, size]})
    except Exception as exc:
        raise ModelError(f"{info.path}: not a detector: input "
                         f"{model.input(0).get_partial_shape()} cannot take a (1, 3, {size}, "
                         f"{size}) image") from exc
    shape = model.output(0).get_partial_shape()
    dims = [d.get_length() if d.is_static else -1 for d in shape] if shape.rank.is_static else []
    classes = info.classes
    expected = 4 + len(classes) if classes else None
    if (len(dims) != 3 or dims[0] != 1 or dims[1] < 5 or dims[2] < 1
            or (expected is not None and dims[1] != expected)):
        want = f"(1, {expected}, anchors)" if expected else "(1, 4 + classes, anchors)"
        raise ModelError(f"{info.path}: not a detector: output shape {shape}, expected {want} "
                         "(a YOLO11/YOLOv8 detection head)")
    if not classes:
        classes = tuple(str(i) for i in range(dims[1] - 4))
    return model, classes
