"""Model grades (LOW / MEDIUM / HIGH = YOLO11 n / s / m) and when to load them.

The integer values are the wire's ``work_load`` and ``loading_mode``
(:mod:`edgeapp.engine.distributed.protocol`), so either enum converts with ``int()``.
"""

from __future__ import annotations

import enum

from edgeapp.errors import InputError

_LETTERS = {"n": 0, "s": 1, "m": 2, "l": 2, "x": 2}


class Grade(enum.IntEnum):
    """How big (slow, accurate) a detector is: YOLO11 n / s / m."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @property
    def letter(self) -> str:
        """The YOLO size letter of the demo model for this grade."""
        return "nsm"[self.value]

    @classmethod
    def parse(cls, value: object) -> Grade:
        """A grade from ``0..2``, ``low|medium|high`` (any case) or a YOLO letter ``n|s|m|l|x``."""
        if isinstance(value, Grade):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= 2:
                return cls(value)
        elif isinstance(value, str):
            text = value.strip().lower()
            if text.isdigit() and int(text) <= 2:
                return cls(int(text))
            if text.upper() in cls.__members__:
                return cls[text.upper()]
            if text in _LETTERS:
                return cls(_LETTERS[text])
        raise InputError(f"grade: expected 0-2, low/medium/high or n/s/m, got {value!r}")


class LoadingMode(enum.IntEnum):
    """Compile a grade's model when first used (LAZY) or every grade at start (EAGER)."""

    LAZY = 0
    EAGER = 1

    @classmethod
    def parse(cls, value: object) -> LoadingMode:
        """A loading mode from ``0|1`` or ``lazy|eager`` (any case)."""
        if isinstance(value, LoadingMode):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return cls(value)
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise InputError(f"loading_mode: expected 0/1 or lazy/eager, got {value!r}")
