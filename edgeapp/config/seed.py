"""Compatibility with the seed's ``system_config.yaml``: renamed keys, refused keys.

The seed keys that kept their name (``orders_path``, ``inventory_path``, ``queue_backend``,
``vlm.model_name``, ``vlm.batch_window_ms``, ``vlm.max_batch_size``, ``scaling.*``) need no
entry here. Errors in a renamed value name the key as the file wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edgeapp.config.rules import show_value
from edgeapp.errors import ConfigError

# seed key -> edgeapp key (dotted paths). ``rtsp_urls`` becomes one station per URL,
# named station-1, station-2, … with the URL as its source.
SEED_RENAMES: dict[str, str] = {
    "rtsp_urls": "stations",
    "yolo_model_path": "models.path",
    "redis_host": "redis.host",
    "redis_port": "redis.port",
    "vlm.ovms_url": "vlm.url",
    "vlm.max_workers": "vlm.max_in_flight",
}

# seed key -> why edgeapp refuses it.
SEED_UNSUPPORTED: dict[str, str] = {
    "storage": "not supported: edgeapp saves evidence frames in its data folder (data_dir), "
               "not in MinIO; remove the storage section",
}

Rewrite = tuple[re.Pattern[str], str]


def apply_seed_keys(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Rewrite]]:
    """Rename seed keys in a copy of ``data``.

    Returns the renamed mapping and the rewrites that turn an edgeapp key path in an error
    back into the seed key the file used. Raises ConfigError for refused keys and for a
    seed key set together with its new name.
    """
    out = dict(data)
    rewrites: list[Rewrite] = []
    for key, why in SEED_UNSUPPORTED.items():
        if key in out:
            raise ConfigError(f"config error: {key} = {show_value(out[key])}: {why}")
    for old, new in SEED_RENAMES.items():
        old_parent, old_leaf = _parent(out, old)
        if old_parent is None or old_leaf not in old_parent:
            continue
        value = old_parent.pop(old_leaf)
        new_parent, new_leaf = _parent(out, new, create=True)
        if new_parent is None:
            continue  # the section is not a mapping: the loader reports it
        if new_leaf in new_parent:
            raise ConfigError(
                f"config error: {old} = {show_value(value)}: the seed key and its new name "
                f"{new} are both set; keep only {new}")
        if old == "rtsp_urls":
            value = _stations_from_urls(value)
            rewrites.append((re.compile(r"^stations\[(\d+)\]\.source$"), r"rtsp_urls[\1]"))
        new_parent[new_leaf] = value
        rewrites.append((re.compile("^" + re.escape(new) + r"(?=$|[.\[])"), old))
    return out, rewrites


def _stations_from_urls(urls: Any) -> list[dict[str, Any]]:
    if not isinstance(urls, list):
        raise ConfigError(f"config error: rtsp_urls = {show_value(urls)}: "
                          "expected a list of camera URLs")
    return [{"name": f"station-{i + 1}", "source": url} for i, url in enumerate(urls)]


def _parent(data: dict[str, Any], dotted: str, create: bool = False
            ) -> tuple[dict[str, Any] | None, str]:
    """The mapping that holds the last part of ``dotted`` (copied, so the input is kept)."""
    *heads, leaf = dotted.split(".")
    node = data
    for head in heads:
        child = node.get(head)
        if child is None and create:
            child = {}
        if not isinstance(child, Mapping):
            return None, leaf
        node[head] = child = dict(child)
        node = child
    return node, leaf
