"""The order catalogue: the inventory of items and the orders that can be packed.

Both files are part of the configuration: a file that cannot be read or is not valid is a
``CatalogError`` (exit code 2) whose message names the file, and the line and column of what
is wrong in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeapp.errors import CatalogError
from edgeapp.paths import demo_inventory_path, demo_orders_path

TICKET_CLASS = "ticket"


@dataclass(frozen=True)
class Item:
    """One product of the inventory."""

    id: str
    name: str
    category: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderLine:
    """One line of an order: an item name and how many."""

    name: str
    quantity: int


@dataclass(frozen=True)
class Catalog:
    """Inventory plus orders, with name/alias lookup."""

    items: tuple[Item, ...]
    orders: dict[str, tuple[OrderLine, ...]]

    @property
    def item_names(self) -> tuple[str, ...]:
        """Item names in inventory order."""
        return tuple(item.name for item in self.items)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Detector classes of the demo models: every item, then the ticket."""
        return (*self.item_names, TICKET_CLASS)

    def canonical(self, name: str) -> str | None:
        """The inventory name for ``name`` or one of its aliases (case-insensitive), else None."""
        return self._lookup.get(_norm(name))

    def expected(self, order_id: str) -> dict[str, int] | None:
        """The items of an order as ``{name: quantity}``, or None for an unknown order."""
        lines = self.orders.get(str(order_id))
        if lines is None:
            return None
        return {line.name: line.quantity for line in lines}

    @property
    def _lookup(self) -> dict[str, str]:
        cached: dict[str, str] | None = self.__dict__.get("_lookup_cache")
        if cached is None:
            cached = {}
            for item in self.items:
                cached[_norm(item.name)] = item.name
                for alias in item.aliases:
                    cached.setdefault(_norm(alias), item.name)
            object.__setattr__(self, "_lookup_cache", cached)
        return cached


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


class _Invalid(Exception):
    """What is wrong, and where in the document (keys and list indices from its root)."""

    def __init__(self, message: str, *where: str | int) -> None:
        super().__init__(message)
        self.message, self.where = message, where


def _read_json(path: Path, what: str) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"config error: {what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"config error: {what} file {path} cannot be read: {exc}") \
            from None
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"config error: {what} file {path}, line {exc.lineno}, column "
                           f"{exc.colno}: not valid JSON: {exc.msg}") from None


def _locate(text: str, where: tuple[str | int, ...]) -> tuple[int, int] | None:
    """(line, column), 1-based, of the value at ``where`` in the JSON ``text``; None if it
    cannot be told. JSON is YAML, and YAML's parser keeps where every node starts."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for step in where:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                and step < len(node.value):
            node = node.value[step]
        else:
            node = None
        if node is None:
            return None
    return (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else None


def _parse(path: Path, what: str, parse: Any, *args: Any) -> Any:
    """Read ``path`` and ``parse`` it; a CatalogError naming file, line and column if not."""
    text, data = _read_json(path, what)
    try:
        return parse(data, *args)
    except _Invalid as bad:
        at = _locate(text, bad.where)
        place = f", line {at[0]}, column {at[1]}" if at else ""
        raise CatalogError(f"config error: {what} file {path}{place}: {bad.message}") \
            from None


def parse_inventory(data: Any) -> tuple[Item, ...]:
    """Validate ``{"items": [{"id", "name", "category", "aliases"}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise _Invalid("expected an object with an 'items' list")
    items: list[Item] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["items"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise _Invalid(f"items[{i}] needs a non-empty 'name'", "items", i)
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise _Invalid(f"items[{i}].aliases must be a list of strings", "items", i,
                           "aliases")
        name = raw["name"]
        if _norm(name) in seen:
            raise _Invalid(f"items[{i}] repeats the name {name!r}", "items", i, "name")
        seen.add(_norm(name))
        items.append(
            Item(str(raw.get("id", i)), name, str(raw.get("category", "")), tuple(aliases))
        )
    if not items:
        raise _Invalid("the inventory has no items", "items")
    return tuple(items)


def parse_orders(data: Any, items: tuple[Item, ...]) -> dict[str, tuple[OrderLine, ...]]:
    """Validate ``{"925": [{"name": "burger", "quantity": 2}, ...]}`` against the inventory."""
    if not isinstance(data, dict):
        raise _Invalid("expected an object mapping order ids to item lists")
    probe = Catalog(items, {})
    orders: dict[str, tuple[OrderLine, ...]] = {}
    for order_id, lines in data.items():
        if not isinstance(lines, list) or not lines:
            raise _Invalid(f"order {order_id} must be a non-empty list of items", order_id)
        parsed: dict[str, int] = {}
        for j, line in enumerate(lines):
            where = f"order {order_id} line {j}"
            if not isinstance(line, dict):
                raise _Invalid(f"{where}: expected an object with name and quantity",
                               order_id, j)
            name = probe.canonical(str(line.get("name", "")))
            if name is None:
                at = (order_id, j, "name") if "name" in line else (order_id, j)
                raise _Invalid(f"{where}: item {line.get('name')!r} is not in the inventory",
                               *at)
            qty = line.get("quantity", 1)
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                raise _Invalid(f"{where}: quantity {qty!r} must be an integer >= 1",
                               order_id, j, "quantity")
            parsed[name] = parsed.get(name, 0) + qty
        orders[str(order_id)] = tuple(OrderLine(n, q) for n, q in parsed.items())
    return orders


def load_catalog(
    orders_path: str | Path | None = None, inventory_path: str | Path | None = None
) -> Catalog:
    """Load inventory and orders; ``None`` means the shipped demo files. A file that cannot
    be read or is not valid raises ``CatalogError`` naming the file, line and column."""
    inv_path = Path(inventory_path) if inventory_path else demo_inventory_path()
    ord_path = Path(orders_path) if orders_path else demo_orders_path()
    items = _parse(inv_path, "inventory", parse_inventory)
    orders = _parse(ord_path, "orders", parse_orders, items)
    return Catalog(items, orders)
