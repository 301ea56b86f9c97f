"""What each kind of config value must look like, said once for errors and for comments."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

# Network camera schemes a station source may use (the sources' StreamSource opens these).
NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
SOURCE_HELP = "synthetic, a video file path, rtsp://…, rtsps://…, http(s)://… or usb:N"

_KIND_HELP = {
    "source": SOURCE_HELP,
    "endpoint": "a ZeroMQ endpoint like tcp://127.0.0.1:5555 or ipc:///tmp/edgeapp.sock",
    "http_url": "an http:// or https:// URL",
    "url_path": "a URL path starting with /",
}
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """The resolved type of each field of a config dataclass."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def item_type(tp: Any) -> Any:
    """The item type of ``tuple[X, ...]``."""
    return typing.get_args(tp)[0]


def is_list(tp: Any) -> bool:
    """Whether ``tp`` is a ``tuple[X, ...]`` field (a YAML list)."""
    return typing.get_origin(tp) is tuple


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def range_text(meta: Mapping[str, Any]) -> str:
    """The numeric range of a field as words, e.g. ``>= 0`` or ``between 0 and 1``."""
    if "ge" in meta and "le" in meta:
        return f"between {_num(meta['ge'])} and {_num(meta['le'])}"
    parts = [f"{op} {_num(meta[k])}"
             for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if k in meta]
    return " and ".join(parts)


def optional_of(tp: Any) -> Any:
    """``X`` for an ``X | None`` field, else None."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 \
            and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def describe(tp: Any, meta: Mapping[str, Any]) -> str:
    """What a value of this field must be, as the end of ``expected …``."""
    inner = optional_of(tp)
    if inner is not None:
        text = describe(inner, meta)
        return text if text.endswith(", or null") else f"{text}, or null"
    rng = range_text(meta)
    if tp is bool:
        return "true or false"
    if tp is int or tp is float:
        noun = "an integer" if tp is int else "a number"
        return f"{noun} {rng}" if rng else noun
    if tp is str:
        return _KIND_HELP.get(meta.get("kind", ""), "a non-empty string")
    if tp is Path:
        return ("an existing file or folder" if meta.get("must_exist") else "a path") + ", or null"
    if typing.get_origin(tp) is Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(tp))
    if is_list(tp):
        item = item_type(tp)
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            return f"a list of {item.__name__.removesuffix('Config').lower()} entries"
        text = "a list of numbers" + (f" {rng}" if rng else "")
        return text + (", highest first, no repeats" if meta.get("descending") else "")
    if dataclasses.is_dataclass(tp):
        return "a mapping of settings"
    raise TypeError(f"no rule for config type {tp!r}")  # a schema bug, caught by the tests


def in_range(value: float, meta: Mapping[str, Any]) -> bool:
    """Whether ``value`` satisfies the field's ``ge``/``gt``/``le``/``lt`` rules."""
    return not (("ge" in meta and value < meta["ge"]) or ("gt" in meta and value <= meta["gt"])
                or ("le" in meta and value > meta["le"]) or ("lt" in meta and value >= meta["lt"]))


def show_value(value: Any) -> str:
    """A bad value as the one line of an error shows it (credentials in URLs hidden)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(_CREDENTIALS.sub("***@", value)) if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


_ENDPOINT = re.compile(r"tcp://(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})|ipc://\S+")
_HTTP_URL = re.compile(r"https?://[^/\s]+(/\S*)?", re.IGNORECASE)


def valid_kind(kind: str, text: str) -> bool:
    """Whether ``text`` has the format its ``kind`` asks (not for ``source``: see loader)."""
    if kind == "endpoint":
        m = _ENDPOINT.fullmatch(text)
        return m is not None and (m.group(2) is None or 1 <= int(m.group(2)) <= 65535)
    if kind == "http_url":
        return bool(_HTTP_URL.fullmatch(text))
    if kind == "url_path":
        return text.startswith("/") and not any(c.isspace() for c in text)
    return True
