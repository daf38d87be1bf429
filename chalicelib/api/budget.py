"""Keeps an item-list response inside its byte budget (`RECS_MAX_RESPONSE_BYTES`).

Braze caches no Connected Content response over 1 MB and parses the whole body for every
recipient, while an item may carry up to 32 KB of properties. A body over the budget is fitted
in three steps, each only if the previous one was not enough, and always re-encoded as valid JSON:
1. extra item fields are left out, the field costing most bytes over the whole list first, so
   that every item keeps the same fields (a template reads the same names on each);
2. names longer than `MAX_NAME` characters are cut (with an ellipsis);
3. items are left out from the end of the list (the least relevant ones).
`id`, `url`, `name`, `price` and `image` are never left out, and URLs are never cut.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Literal

from chalicelib.catalogue import CORE_FIELDS

MAX_NAME = 120
Trim = Literal["fields", "names", "items"]


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _pair(key: str, value: Any) -> int:
    """Bytes of `"key":value` plus its comma."""
    return _size({key: value}) - 2 + 1


class _Fitting:
    """The items with each one's encoded size, and the list's size, kept exact as they shrink."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.sizes = [_size(item) for item in items]
        self.total = sum(self.sizes) + max(len(items) - 1, 0) + 2

    def drop_fields(self, budget: int) -> None:
        costs: Counter[str] = Counter()
        for item in self.items:
            for key, value in item.items():
                if key not in CORE_FIELDS:
                    costs[key] += _pair(key, value)
        for key, _ in costs.most_common():
            if self.total <= budget:
                return
            for n, item in enumerate(self.items):
                if key in item:
                    cost = _pair(key, item.pop(key))
                    self.sizes[n] -= cost
                    self.total -= cost

    def cut_names(self) -> None:
        for n, item in enumerate(self.items):
            name = item.get("name")
            if isinstance(name, str) and len(name) > MAX_NAME:
                item["name"] = name[: MAX_NAME - 1] + "…"
                new = _size(item)
                self.total -= self.sizes[n] - new
                self.sizes[n] = new

    def drop_last(self) -> None:
        self.items.pop()
        self.total -= self.sizes.pop() + (1 if self.items else 0)


def fit(body: str, budget: int) -> tuple[str, Trim | None]:
    """`body` (a JSON array of item objects) within `budget` bytes, and what was trimmed."""
    if len(body) * 4 <= budget or len(body.encode("utf-8")) <= budget:
        return body, None
    fitting = _Fitting(json.loads(body))
    fitting.drop_fields(budget)
    trimmed: Trim = "fields"
    if fitting.total > budget:
        trimmed = "names"
        fitting.cut_names()
    while fitting.total > budget and fitting.items:
        trimmed = "items"
        fitting.drop_last()
    return json.dumps(fitting.items, ensure_ascii=False, separators=(",", ":")), trimmed
