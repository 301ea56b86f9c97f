"""What the engine derives from the config before it starts its parts."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from edgeapp.config import Config
from edgeapp.engine.distributed import keys as keymod
from edgeapp.engine.distributed.settings import ProducerSettings
from edgeapp.engine.orders.catalog import TICKET_CLASS, Catalog
from edgeapp.engine.vision.grades import Grade, LoadingMode

if TYPE_CHECKING:  # the model registry is imported when first needed
    from edgeapp.engine.vision.models import GradeMap

__all__ = ["input_size_for", "make_producer_settings", "model_grades", "ticket_class_of",
           "warm_sizes", "worker_keys"]

LOCAL_WORKER_KEYS = "engine-local"


@functools.lru_cache(maxsize=4)
def _grade_map(models_path: str) -> GradeMap:
    """Which installed model serves each grade (the model folders are read once)."""
    from edgeapp.engine.vision.models import installed_models, resolve_grades

    return resolve_grades(installed_models([models_path]))


def _model(models_path: str, grade: str) -> tuple[int, tuple[str, ...]]:
    """(input size, class names) of the model that serves ``grade``."""
    info = _grade_map(models_path).models[Grade.parse(grade)]
    return info.input_size, info.classes


def model_grades(config: Config) -> tuple[Grade, ...]:
    """The grades with a model of their own; the controller moves between these only (with
    just YOLO11 n installed, every grade would run n)."""
    fallbacks = _grade_map(str(config.models.path)).fallbacks
    own = tuple(g for g in Grade if g not in fallbacks)
    return own or (Grade.parse(config.stream.grade),)


def ticket_class_of(config: Config, catalog: Catalog) -> int | None:
    """The detector class index of the order ticket (the model's own names decide)."""
    _, classes = _model(str(config.models.path), config.stream.grade)
    names = classes or catalog.class_names
    return names.index(TICKET_CLASS) if TICKET_CLASS in names else None


def input_size_for(config: Config, scale: float, grade: Grade) -> int | None:
    """The detector input size for frames at ``scale`` of the camera's size (None: the
    model's own size).

    The input follows the frame's scale so that a lower resolution really costs less
    compute; a multiple of 32, as YOLO needs.
    """
    if scale >= 1.0:
        return None
    size, _ = _model(str(config.models.path), grade.name.lower())
    return max(32, int(round(size * scale / 32.0)) * 32)


def warm_sizes(config: Config) -> list[int]:
    """Every detector input size the streams may ask for, at any grade with its own model:
    the workers compile them all in the background at start (see ``Detector.warm``)."""
    sizes = set()
    for grade in model_grades(config):
        own, _ = _model(str(config.models.path), grade.name.lower())
        for scale in config.stream.resolution_levels:
            sizes.add(input_size_for(config, scale, grade) or own)
    return sorted(sizes, reverse=True)


def worker_keys(config: Config) -> tuple[Path, Path] | None:
    """(server keys folder, the local workers' key folder) when CURVE keys are set up.

    With ``edgeapp keys init`` done, the sockets require CURVE; the engine's own workers
    then get a key pair of their own (made once, authorised like any remote worker).
    """
    root = Path(config.distributed.keys_dir)
    if not (root / f"{keymod.SERVER}.key_secret").exists():
        return None
    folder = root / keymod.WORKERS / LOCAL_WORKER_KEYS
    if not folder.exists():
        folder = keymod.add_worker(root, LOCAL_WORKER_KEYS)
    return root, folder


def make_producer_settings(config: Config, keys_dir: Path | None,
                           grade: Grade | None = None) -> ProducerSettings:
    """The Producer's settings: binding, batching and leases from ``distributed``; the
    starting ``grade`` (default: ``stream.grade``); the detector options told to workers
    from ``models``."""
    d, models = config.distributed, config.models
    return ProducerSettings(
        address=d.producer_bind, grade=int(grade if grade is not None
                                           else Grade.parse(config.stream.grade)),
        loading_mode=int(LoadingMode.parse(models.loading_mode)), batch_size=d.batch_size,
        queue_size=d.queue_size, lease_s=d.lease_s, keys_dir=keys_dir, insecure=d.insecure,
        confirmation_extra={"models_path": str(models.path), "device": models.device,
                            "conf_threshold": models.conf_threshold,
                            "iou_threshold": models.iou_threshold,
                            "warm_sizes": warm_sizes(config)})
