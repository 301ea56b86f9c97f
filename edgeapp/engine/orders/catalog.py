"""The order catalogue: the inventory of items and the orders that can be packed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeapp.errors import InputError
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


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} file {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} file {path} is not valid JSON: {exc}") from None


def parse_inventory(data: Any, source: str = "inventory") -> tuple[Item, ...]:
    """Validate ``{"items": [{"id", "name", "category", "aliases"}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InputError(f"{source}: expected an object with an 'items' list")
    items: list[Item] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["items"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise InputError(f"{source}: items[{i}] needs a non-empty 'name'")
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InputError(f"{source}: items[{i}].aliases must be a list of strings")
        name = raw["name"]
        if _norm(name) in seen:
            raise InputError(f"{source}: items[{i}] repeats the name {name!r}")
        seen.add(_norm(name))
        items.append(
            Item(str(raw.get("id", i)), name, str(raw.get("category", "")), tuple(aliases))
        )
    if not items:
        raise InputError(f"{source}: the inventory has no items")
    return tuple(items)


def parse_orders(
    data: Any, items: tuple[Item, ...], source: str = "orders"
) -> dict[str, tuple[OrderLine, ...]]:
    """Validate ``{"925": [{"name": "burger", "quantity": 2}, ...]}`` against the inventory."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected an object mapping order ids to item lists")
    probe = Catalog(items, {})
    orders: dict[str, tuple[OrderLine, ...]] = {}
    for order_id, lines in data.items():
        if not isinstance(lines, list) or not lines:
            raise InputError(f"{source}: order {order_id} must be a non-empty list of items")
        parsed: dict[str, int] = {}
        for j, line in enumerate(lines):
            where = f"{source}: order {order_id} line {j}"
            if not isinstance(line, dict):
                raise InputError(f"{where}: expected an object with name and quantity")
            name = probe.canonical(str(line.get("name", "")))
            if name is None:
                raise InputError(f"{where}: item {line.get('name')!r} is not in the inventory")
            qty = line.get("quantity", 1)
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                raise InputError(f"{where}: quantity {qty!r} must be an integer >= 1")
            parsed[name] = parsed.get(name, 0) + qty
        orders[str(order_id)] = tuple(OrderLine(n, q) for n, q in parsed.items())
    return orders


def load_catalog(
    orders_path: str | Path | None = None, inventory_path: str | Path | None = None
) -> Catalog:
    """Load inventory and orders; ``None`` means the shipped demo files."""
    inv_path = Path(inventory_path) if inventory_path else demo_inventory_path()
    ord_path = Path(orders_path) if orders_path else demo_orders_path()
    items = parse_inventory(_read_json(inv_path, "inventory"), str(inv_path))
    orders = parse_orders(_read_json(ord_path, "orders"), items, str(ord_path))
    return Catalog(items, orders)
