"""The one exception root of edgeapp and its narrow subclasses."""

from __future__ import annotations


class EdgeAppError(Exception):
    """Root of every error edgeapp raises on purpose."""

    exit_code = 1


class ConfigError(EdgeAppError):
    """A config file or value is invalid; the message names the key."""

    exit_code = 2


class CatalogError(ConfigError):
    """The orders or inventory file is not valid; the message names the file, line and column."""


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


class BackpressureError(EdgeAppError):
    """The VLM batcher's queue is full; the request was not accepted (retry or drop it)."""

    exit_code = 7


class BatcherStoppedError(EdgeAppError):
    """The VLM batcher is not running; the request was not accepted."""

    exit_code = 8


class StoreError(EdgeAppError):
    """The results database cannot be opened, read or written; the message names the file."""

    exit_code = 9


class ProtocolError(EdgeAppError):
    """A ZeroMQ message breaks the Work-API; ``reason`` names the rule it broke."""

    exit_code = 10

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class SecurityError(EdgeAppError):
    """Keys are missing or refused, or an address would be exposed without CURVE."""

    exit_code = 11


class TransportError(EdgeAppError):
    """A peer cannot be reached or a socket (ZeroMQ, the metrics endpoint) cannot be bound."""

    exit_code = 12


class NoDisplayError(EdgeAppError):
    """There is no display to open the window on (use --headless there)."""

    exit_code = 15


class UsageError(EdgeAppError):
    """The command line is wrong: an unknown mode, option or argument."""

    exit_code = 64


class InstallError(EdgeAppError):
    """The desktop launcher cannot be installed or removed; the message names the file."""

    exit_code = 14
