"""Detection class names, as the models that produce the detections name them."""

from __future__ import annotations

import logging

from edgeapp.config import Config
from edgeapp.engine.vision.grades import Grade
from edgeapp.errors import EdgeAppError

logger = logging.getLogger(__name__)


class ClassNames:
    """Class index -> name for each grade's model (the catalog's names when a model has none)."""

    def __init__(self, by_grade: dict[Grade, tuple[str, ...]], fallback: tuple[str, ...]) -> None:
        self._by_grade = by_grade
        self._fallback = fallback
        self.grade: Grade | None = None  # the grade in force, from the engine's status

    @classmethod
    def of(cls, config: Config, catalog_names: tuple[str, ...]) -> ClassNames:
        """The names of the models installed for ``config`` (read from their metadata)."""
        by_grade: dict[Grade, tuple[str, ...]] = {}
        try:
            from edgeapp.engine.vision.models import installed_models, resolve_grades

            grades = resolve_grades(installed_models([config.models.path]))
            by_grade = {g: info.classes for g, info in grades.models.items() if info.classes}
        except EdgeAppError as exc:  # the engine reports a bad model folder itself
            logger.warning("class names: %s", exc)
        return cls(by_grade, catalog_names)

    def name(self, index: int) -> str:
        """The name of class ``index`` (``class N`` when no model or catalog names it)."""
        names = self._by_grade.get(self.grade) if self.grade is not None else None
        names = names or next(iter(self._by_grade.values()), None) or self._fallback
        return names[index] if 0 <= index < len(names) else f"class {index}"
