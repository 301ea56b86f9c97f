"""Load and validate a config: YAML -> seed renames -> typed, checked ``Config``.

Strict: unknown keys, duplicate keys, wrong types and out-of-range values are errors. Every
error is one ConfigError line ``config error: KEY = VALUE: expected …`` naming the dotted key
(``stations[2].fps``) as the file wrote it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeapp.config import rules
from edgeapp.config.schema import Config, StationConfig
from edgeapp.config.seed import Rewrite, apply_seed_keys
from edgeapp.errors import ConfigError


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config file at ``path``; ``None`` gives the built-in demo defaults."""
    if path is None:
        return config_from_dict({})
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config error: {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config error: {path}: is a folder, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config error: {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot read it ({exc.strerror})") from None
    data = parse_yaml(text, str(path))
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"config error: {path}: expected a mapping of settings at the top "
                          f"level, found {type(data).__name__}")
    return config_from_dict(data, base_dir=file.resolve().parent)


def parse_yaml(text: str, name: str = "<config>") -> Any:
    """Parse YAML text strictly (a key twice is an error); ``name`` is used in errors."""
    import yaml  # imported here: `import edgeapp.config` needs only the standard library

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"config error: {name} {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config error: {name}{where}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {name}: not valid YAML ({exc})") from None


def config_from_dict(data: Any, base_dir: str | os.PathLike[str] | None = None) -> Config:
    """Validate a parsed config mapping; relative paths are taken from ``base_dir`` (or cwd)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config error: the top level = {rules.show_value(data)}: "
                          "expected a mapping of settings")
    renamed, rewrites = apply_seed_keys(data)
    ctx = _Context(Path(base_dir) if base_dir is not None else Path.cwd(), rewrites)
    cfg: Config = _build(Config, renamed, "", ctx)
    _check_across(cfg, ctx)
    return cfg


@dataclass
class _Context:
    base_dir: Path
    rewrites: list[Rewrite]
    root: dict[str, Any] = field(default_factory=dict)  # top-level values resolved so far

    def error(self, key: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"config error: {self.shown(key)} = {rules.show_value(value)}: "
                           f"{expected}")

    def shown(self, key: str) -> str:
        for pattern, replacement in self.rewrites:
            new, n = pattern.subn(replacement, key)
            if n:
                return new
        return key


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(cls: type, data: Any, key: str, ctx: _Context) -> Any:
    if data is None:
        data = {}  # an empty section, e.g. a YAML `vlm:` with every key commented out
    if not isinstance(data, Mapping):
        raise ctx.error(key, data, f"expected a mapping of {key} settings")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in data.items():
        if name not in known:
            raise ctx.error(_join(key, str(name)), value, _unknown_key(str(name), known))
    types = rules.hints(cls)
    values: dict[str, Any] = {}
    for name, f in known.items():
        sub = _join(key, name)
        if "fallback" in f.metadata and data.get(name) is None:
            values[name] = f.metadata["fallback"](ctx.root)
        elif name in data:
            values[name] = _convert(data[name], types[name], f.metadata, sub, ctx)
        elif dataclasses.is_dataclass(types[name]):
            values[name] = _build(types[name], None, sub, ctx)  # its paths need the context
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"config error: {ctx.shown(sub)} is missing: expected "
                              f"{rules.describe(types[name], f.metadata)}")
        if cls is Config and name in values:
            ctx.root[name] = values[name]
    return cls(**values)


def _unknown_key(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return "unknown key (expected one of: " + ", ".join(known) + ")"


def _convert(value: Any, tp: Any, meta: Mapping[str, Any], key: str, ctx: _Context) -> Any:
    expected = "expected " + rules.describe(tp, meta)
    inner = rules.optional_of(tp)
    if inner is not None:
        return None if value is None else _convert(value, inner, meta, key, ctx)
    if tp is bool:
        if not isinstance(value, bool):
            raise ctx.error(key, value, expected)
        return value
    if tp is int or tp is float:
        ok = isinstance(value, int) or (tp is float and isinstance(value, float))
        if not ok or isinstance(value, bool) or not math.isfinite(value):
            raise ctx.error(key, value, expected)
        if not rules.in_range(value, meta):
            raise ctx.error(key, value, expected)
        return tp(value)
    if tp is str:
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(key, value, expected)
        kind = meta.get("kind", "")
        if kind == "source":
            return _source(value.strip(), key, ctx, expected)
        if not rules.valid_kind(kind, value.strip()):
            raise ctx.error(key, value, expected)
        return value.strip()
    if tp is Path:
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(key, value, expected)
        path = _resolve(value.strip(), ctx)
        if meta.get("must_exist") and not path.exists():
            raise ctx.error(key, value, f"expected an existing file or folder, {path} does "
                                        "not exist")
        return path
    if typing.get_origin(tp) is Literal:
        if value not in typing.get_args(tp) or isinstance(value, bool):
            raise ctx.error(key, value, expected)
        return value
    if rules.is_list(tp):
        return _list(value, rules.item_type(tp), meta, key, ctx, expected)
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type, tp), value, key, ctx)
    raise TypeError(f"no rule for config type {tp!r} at {key}")  # a schema bug


def _list(value: Any, item: Any, meta: Mapping[str, Any], key: str, ctx: _Context,
          expected: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ctx.error(key, value, expected)
    if len(value) < meta.get("min_items", 1):
        raise ctx.error(key, value, expected + f", at least {meta.get('min_items', 1)}")
    if item is StationConfig:
        return tuple(_build(StationConfig, _station_entry(v, i), f"{key}[{i}]", ctx)
                     for i, v in enumerate(value))
    item_meta = {k: v for k, v in meta.items() if k in ("ge", "gt", "le", "lt")}
    out = tuple(_convert(v, item, item_meta, f"{key}[{i}]", ctx) for i, v in enumerate(value))
    if meta.get("descending") and any(a <= b for a, b in zip(out, out[1:], strict=False)):
        raise ctx.error(key, value, expected)
    return out


def _station_entry(entry: Any, index: int) -> Any:
    """A station's defaults that depend on its place: name ``station-N``, seed N-1."""
    if isinstance(entry, str):
        entry = {"source": entry}  # shorthand: a list item that is only a source
    if not isinstance(entry, Mapping):
        return entry  # _build reports it
    return {"name": f"station-{index + 1}", "seed": index, **entry}


_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")


def _source(text: str, key: str, ctx: _Context, expected: str) -> str:
    low = text.lower()
    if low == "synthetic":
        return "synthetic"
    if low.startswith("usb:"):
        if not text[4:].isdigit():
            raise ctx.error(key, text, expected)
        return f"usb:{int(text[4:])}"
    scheme = _URL_SCHEME.match(text)
    if scheme:
        name = scheme.group(1).lower()
        if name in rules.NETWORK_SCHEMES and len(text) > scheme.end():
            return text
        if name != "file" or len(text) == scheme.end():
            raise ctx.error(key, text, expected)
        text = text[scheme.end():]
    # A missing video file is not refused here: the station reports it as OFFLINE with the
    # reason, like any camera that cannot be opened (see engine.sources.factory).
    return str(_resolve(text, ctx))


def _resolve(text: str, ctx: _Context) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (ctx.base_dir / path).resolve()


def _check_across(cfg: Config, ctx: _Context) -> None:
    """Rules that tie two keys together; the error names the key to change."""
    seen: dict[str, int] = {}
    for i, station in enumerate(cfg.stations):
        if station.name in seen:
            raise ctx.error(f"stations[{i}].name", station.name,
                            f"expected a unique name (stations[{seen[station.name]}] has it)")
        seen[station.name] = i
        if station.remote and cfg.queue_backend != "redis":
            raise ctx.error(f"stations[{i}].remote", True,
                            "expected false: a station on another machine needs "
                            "queue_backend: redis")
    sc = cfg.scaling
    if sc.min_stations > sc.max_stations:
        raise ctx.error("scaling.min_stations", sc.min_stations,
                        f"expected <= scaling.max_stations ({sc.max_stations})")
    for what in ("gpu", "cpu", "latency"):
        up = getattr(sc, f"scale_up_{what}_threshold")
        down = getattr(sc, f"scale_down_{what}_threshold")
        if up > down:
            raise ctx.error(
                f"scaling.scale_up_{what}_threshold", up,
                f"expected <= scaling.scale_down_{what}_threshold ({down}), or scaling up "
                "would trigger scaling down")


@functools.cache
def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # (untyped without stubs)
        """A SafeLoader that refuses a key written twice in one mapping."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    ident = (key_node.tag, key_node.value)
                    if ident in seen:
                        raise ConfigError(f"line {key_node.start_mark.line + 1}: key "
                                          f"{key_node.value!r} is written twice")
                    seen.add(ident)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader
