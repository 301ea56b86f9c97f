"""Write a Config as commented YAML (``edgeapp config --print-default``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeapp.config import rules
from edgeapp.config.schema import Config

HEADER = """\
# edgeapp configuration. Every key is optional: a key left out takes the value shown here,
# and these values are the built-in demo. Relative paths are read from this file's folder.
# Check a file with: edgeapp config --check FILE
"""


def default_config_yaml() -> str:
    """The full default config as commented YAML; loading it gives the default Config."""
    return config_to_yaml(Config())


def config_to_yaml(cfg: Config) -> str:
    """``cfg`` as commented YAML; a path equal to its default is written as null."""
    lines = [HEADER.rstrip("\n")]
    root = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for f in dataclasses.fields(cfg):
        lines.append("")
        _field(cfg, f, "", root, lines)
    return "\n".join(lines) + "\n"


def _field(obj: Any, f: dataclasses.Field[Any], pad: str, root: dict[str, Any],
           lines: list[str]) -> None:
    tp = rules.hints(type(obj))[f.name]
    value = getattr(obj, f.name)
    doc = f.metadata.get("doc", "")
    if dataclasses.is_dataclass(tp):
        lines.append(f"{pad}# {doc}")
        lines.append(f"{pad}{f.name}:")
        for sub in dataclasses.fields(value):
            _field(value, sub, pad + "  ", root, lines)
        return
    lines.append(f"{pad}# {doc} ({rules.describe(tp, f.metadata)})")
    if rules.is_list(tp) and dataclasses.is_dataclass(rules.item_type(tp)):
        _entries(value, rules.item_type(tp), pad, f.name, lines)
    elif rules.is_list(tp):
        lines.append(f"{pad}{f.name}: [{', '.join(_scalar(v) for v in value)}]")
    elif f.metadata.get("secret") and value is not None:
        lines.append(f"{pad}{f.name}: null  # set in the config read, not written out")
    elif rules.optional_of(tp) is Path:
        lines.append(f"{pad}{f.name}: {_scalar(None if value is None else str(value))}")
    elif tp is Path:
        lines.append(f"{pad}{f.name}: " + (
            "null" if value == f.metadata["fallback"](root) else _scalar(str(value))))
    else:
        lines.append(f"{pad}{f.name}: {_scalar(value)}")


def _entries(items: tuple[Any, ...], item_cls: type, pad: str, name: str,
             lines: list[str]) -> None:
    """A list of entries: the keys of one entry explained once, then the entries."""
    types = rules.hints(item_cls)
    lines.append(f"{pad}# each entry:")
    for f in dataclasses.fields(item_cls):
        what = rules.describe(types[f.name], f.metadata)
        lines.append(f"{pad}#   {f.name}: {f.metadata['doc']} ({what})")
    lines.append(f"{pad}{name}:")
    for item in items:
        for i, f in enumerate(dataclasses.fields(item)):
            lead = "- " if i == 0 else "  "
            lines.append(f"{pad}  {lead}{f.name}: {_scalar(getattr(item, f.name))}")


def _scalar(value: Any) -> str:
    import yaml

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1 << 20,
                               allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()
