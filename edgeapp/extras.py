"""Optional extras: a mode that needs one says so in one line, with the command to fix it."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeapp.errors import MissingExtraError


def require(module_name: str, extra: str) -> ModuleType:
    """Import ``module_name`` or raise MissingExtraError naming the ``extra`` that provides it.

    Only a missing module counts: a module that is installed but fails to import (e.g. a
    missing system library) raises its own error, because pip would not fix it.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parts = module_name.split(".")
        ours = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if exc.name not in ours:
            raise
        raise MissingExtraError(
            f"this mode needs the '{extra}' extra: pip install 'edgeapp[{extra}]'") from exc
