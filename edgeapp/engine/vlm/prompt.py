"""The VLM prompt (inventory + rules, never the expected order) and a tolerant answer parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edgeapp.engine.orders.catalog import Catalog

NO_ITEMS = "NO_ITEMS"

SYSTEM_PROMPT = (
    "You check take-away orders at a pick-up counter. You are shown photos of one order "
    "being packed and list the food and drink items you can see. You answer only in the "
    "requested format, with no explanations."
)


def build_user_text(catalog: Catalog) -> str:
    """Inventory names (with aliases) and the answer rules; the order itself stays out."""
    lines = ["Inventory (answer with these names; other names for an item in brackets):"]
    for item in catalog.items:
        aliases = f" ({', '.join(item.aliases)})" if item.aliases else ""
        lines.append(f"- {item.name}{aliases}")
    example = catalog.item_names[0]
    lines += [
        "",
        "Rules:",
        "- The images are several views of the same order: count each physical item once, "
        "not once per image.",
        "- List only items of the inventory. Ignore the bag, the ticket, napkins, cutlery "
        "and hands.",
        f"- One line per item, as: item name x quantity (for example: {example} x 2).",
        f"- If you see none of the inventory items, answer exactly: {NO_ITEMS}",
        "- Write nothing else.",
    ]
    return "\n".join(lines)


def build_messages(user_text: str, image_urls: list[str]) -> list[dict[str, Any]]:
    """OpenAI chat messages: the system prompt, then the rules and one image part per frame."""
    content: list[dict[str, Any]] = [{"type": "text", "text": user_text}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": content},
    ]


@dataclass(frozen=True)
class ParsedAnswer:
    """Inventory items found in a VLM answer, names it gave outside the inventory, or why not."""

    items: dict[str, int] | None
    unknown: tuple[str, ...] = ()
    error: str | None = None


_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}
_WORD_QTY = "|".join(_WORDS)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_BULLET = re.compile(r"^(?:[-*•·+>]+|\d+[.)])\s+")
_NO_ITEMS = re.compile(r"\bno[_ ]items\b", re.I)
_TRAILING_NOTE = re.compile(r"\s*\([^)]*[a-z]{2,}[^)]*\)$")  # "(in the bag)", not "(x2)"
_CONTAINER = re.compile(
    r"^(?:cups?|bottles?|cans?|glass(?:es)?|box(?:es)?|bags?|pieces?|portions?|orders?|"
    r"servings?|packs?|packets?|slices?)\s+of\s+"
)
# item line shapes, tried in order; the first whose name is in the inventory wins (see _match)
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(?P<name>.+?)\s+x\s*(?P<qty>\d+)$"),                  # burger x 2, burger x2
    re.compile(rf"^(?P<qty>\d+|{_WORD_QTY})\s*x?\s+(?P<name>.+)$"),     # 2 x burger, 2 burgers
    re.compile(r"^(?P<name>.+?)\s*[:=–—-]\s*x?\s*(?P<qty>\d+)$"),       # burger: 2
    re.compile(r"^(?P<name>.+?)\s*\(\s*x?\s*(?P<qty>\d+)\s*\)$"),       # burger (2)
    re.compile(r"^(?P<name>.+?)\s+(?P<qty>\d+)$"),                      # burger 2
)
# header-ish words that are never an item, even with a number after them ("Total: 3")
_NOT_ITEMS = {"total", "items", "item", "count", "quantity", "order", "answer", "image",
              "images", "photo", "frame", "list"}
_MAX_UNKNOWN_WORDS = 3  # longer "names" are prose, not items


def resolve_name(name: str, catalog: Catalog) -> str | None:
    """The inventory name for a name as a VLM writes it (case, plural, alias, "cup of")."""
    n = " ".join(name.lower().strip(" '\"`.,:;=-").split())
    n = re.sub(r"^(?:a|an|the)\s+", "", n)
    n = _CONTAINER.sub("", n)
    if not n:
        return None
    candidates = [n]
    if n.endswith("ies"):
        candidates.append(n[:-3] + "y")
    if n.endswith("es"):
        candidates.append(n[:-2])
    if n.endswith("s"):
        candidates.append(n[:-1])
    else:
        candidates.append(n + "s")  # "nugget" → "nuggets"
    for cand in candidates:
        found = catalog.canonical(cand)
        if found is not None:
            return found
    return None


def _clean(line: str) -> str:
    line = line.strip().replace("**", "").replace("__", "").replace("`", "")
    line = _BULLET.sub("", line)
    line = re.sub(r"\s*[×✕✖]\s*", " x ", line)
    line = re.sub(r"(?<=\S)\s*\*\s*(?=\d)", " x ", line)  # "burger * 2"
    line = line.lower().strip().rstrip(".,;!")
    return _TRAILING_NOTE.sub("", line).strip()


def parse_answer(text: str | None, catalog: Catalog) -> ParsedAnswer:
    """Items from ``item name x quantity`` lines, tolerant of the ways models write them.

    Accepted: bullets and numbering, ``2 x burger``, ``burger x2``, ``burger: 2``,
    ``Burger ×2``, ``burger (2)``, ``two burgers``, a bare inventory name (= 1), case,
    plurals, aliases, code fences, ``<think>`` blocks. Lines that are not items (prose,
    headers) are ignored. Quantities of one item are summed. A name with a digit quantity
    that is not in the inventory goes to ``unknown``. ``NO_ITEMS`` (and nothing else) →
    ``{}``; no text → "empty answer"; text without any of this → "unparseable answer".
    """
    body = _THINK.sub("", text or "")
    lines = [ln for ln in body.splitlines() if not ln.strip().startswith("```")]
    if not any(ln.strip() for ln in lines):
        return ParsedAnswer(None, error="empty answer")
    items: dict[str, int] = {}
    unknown: list[str] = []
    understood = False  # an item line (even "x 0") or NO_ITEMS was seen
    for raw in lines:
        line = _clean(raw)
        if not line:
            continue
        if _NO_ITEMS.search(line):
            understood = True
            continue
        name, qty, digits = _match(line, catalog)
        if name is None:
            continue
        if catalog.canonical(name) is not None:
            understood = True
            if qty > 0:
                items[name] = items.get(name, 0) + qty
        elif digits:
            understood = True
            if name not in unknown:
                unknown.append(name)
    if not understood:
        return ParsedAnswer(None, error="unparseable answer")
    return ParsedAnswer(items, tuple(unknown))


def _match(line: str, catalog: Catalog) -> tuple[str | None, int, bool]:
    """(inventory or unknown name, quantity, quantity was digits) for one cleaned line."""
    fallback: tuple[str | None, int, bool] = (None, 0, False)
    for pattern in _PATTERNS:
        m = pattern.match(line)
        if m is None:
            continue
        qty_text, raw_name = m.group("qty"), m.group("name")
        qty = int(qty_text) if qty_text.isdigit() else _WORDS[qty_text]
        known = resolve_name(raw_name, catalog)
        if known is not None:
            return known, qty, qty_text.isdigit()
        name = " ".join(raw_name.strip(" '\"`.,:;=-").split())
        if (fallback[0] is None and qty_text.isdigit() and re.search(r"[a-z]", name)
                and len(name.split()) <= _MAX_UNKNOWN_WORDS and name not in _NOT_ITEMS):
            fallback = (name, qty, True)
    known = resolve_name(line, catalog)  # a bare inventory name: one of it
    if known is not None:
        return known, 1, False
    return fallback
