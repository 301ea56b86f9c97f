"""The one exception root of edgeapp and its narrow subclasses."""

from __future__ import annotations


class EdgeAppError(Exception):
    """Root of every error edgeapp raises on purpose."""

    exit_code = 1


class ConfigError(EdgeAppError):
    """A config file or value is invalid; the message names the key."""

    exit_code = 2


class MissingExtraError(EdgeAppError):
    """A mode needs an optional extra that is not installed."""

    exit_code = 3


class SourceError(EdgeAppError):
    """A camera source cannot be opened or read."""

    exit_code = 4


class ModelError(EdgeAppError):
    """A model folder is missing, corrupt, or not a detector."""

    exit_code = 5


class InputError(EdgeAppError):
    """An input (frame, file, message) has the wrong type, shape or content."""

    exit_code = 6
