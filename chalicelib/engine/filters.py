"""Evaluating Personalize filter expressions (parsed by `chalicelib.filters.language`) to a
boolean mask over an array of item ids: against item metadata, the user's interactions and the
user's own metadata, with Personalize's semantics.

- `INCLUDE A | INCLUDE B` keeps the union, `EXCLUDE A | EXCLUDE B` drops the union, and
  `INCLUDE A | EXCLUDE B` keeps A minus B (order does not matter).
- An EXCLUDE expression whose placeholder was not given is skipped; an INCLUDE one needs all.
- An expression whose `IF CurrentUser...` does not hold for this user is skipped.
- `Interactions.EVENT_TYPE` tests look at each of the user's events (case-insensitive types, `*`
  for all), at most the 100 most recent per event type, as Personalize does; an item matches
  when one of its events passes the expression's conditions.
- `IN`/`NOT IN` are exact string matches; a multi-value field (`a|b`) matches IN when any of its
  values is listed. An item or user without the field matches no test on it (SQL's NULL).
- `CurrentItem.FIELD` is the field's value on the item related items are asked for (all its
  values for IN); when that item lacks the field, no item passes the test (NULL again).

Speed: `ItemFields` indexes an item array once per field (value → positions, and a float array
for comparisons) and caches condition masks, so a request costs a few vectorised operations on
the item array plus a pass over the user's own events.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.catalogue import InMemoryCatalogue, field_name, normalise
from chalicelib.filters import CurrentItemFilterError
from chalicelib.filters.language import Condition, Expression, FilterExpression, parse
from chalicelib.filters.values import parse_number, resolve

MAX_EVENTS_PER_TYPE = 100  # Personalize's filters see the 100 most recent events per type
_CONDITION_CACHE = 256
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
Event = tuple[str, str, float]  # (item_id, event_type, ts), oldest first


def _texts(value: Any) -> list[str]:
    """The string values a field holds: `a|b` (Personalize's multi-value) and lists split."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, bool):
        return ["True" if value else "False"]
    return [part for part in str(value).split("|") if part != ""]


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return float("nan")
    if isinstance(value, int | float):
        return float(value)
    parsed = parse_number(str(value))
    return float("nan") if parsed is None else parsed


class ItemFields:
    """Field lookups over one array of item ids (a model's items, a fallback or ranking list),
    built once per field on first use. Immutable inputs: a new catalogue or model makes a new
    one."""

    def __init__(
        self,
        item_ids: Sequence[str] | np.ndarray,
        catalogue: InMemoryCatalogue,
        index: Mapping[str, int] | None = None,
    ) -> None:
        self.item_ids = [str(i) for i in item_ids]
        self.size = len(self.item_ids)
        self.catalogue = catalogue
        self.index = index if index is not None else {i: n for n, i in enumerate(self.item_ids)}
        self._postings: dict[str, dict[str, np.ndarray]] = {}
        self._numbers: dict[str, np.ndarray] = {}
        self._masks: dict[tuple[Any, ...], np.ndarray] = {}

    def _column(self, field: str) -> dict[str, Any]:
        name = field_name(field)
        if name == "item_id":
            return {i: i for i in self.item_ids}
        return self.catalogue.column(name)

    def postings(self, field: str) -> dict[str, np.ndarray]:
        """Field value → positions of the items holding it."""
        key = field_name(field)
        found = self._postings.get(key)
        if found is None:
            column = self._column(field)
            lists: dict[str, list[int]] = {}
            for pos, item in enumerate(self.item_ids):
                for text in _texts(column.get(item)):
                    lists.setdefault(text, []).append(pos)
            found = {k: np.asarray(v, dtype=np.int64) for k, v in lists.items()}
            self._postings[key] = found
        return found

    def numbers(self, field: str) -> np.ndarray:
        key = field_name(field)
        found = self._numbers.get(key)
        if found is None:
            column = self._column(field)
            found = np.fromiter((_number(column.get(i)) for i in self.item_ids), float, self.size)
            self._numbers[key] = found
        return found

    def condition(self, cond: Condition, values: Sequence[str]) -> np.ndarray:
        """The items passing one Items condition with these (resolved) values; cached."""
        key = (field_name(cond.field), cond.op, tuple(values))
        mask = self._masks.get(key)
        if mask is not None:
            return mask
        if cond.is_list:
            hit = np.zeros(self.size, dtype=bool)
            postings = self.postings(cond.field)
            for value in set(values):
                positions = postings.get(value)
                if positions is not None:
                    hit[positions] = True
            if cond.op == "NOT IN":
                has_value = np.zeros(self.size, dtype=bool)
                for positions in postings.values():
                    has_value[positions] = True
                hit = has_value & ~hit
        else:
            numbers = self.numbers(cond.field)
            bound = parse_number(values[0])
            with np.errstate(invalid="ignore"):
                hit = _COMPARE[cond.op](numbers, bound) & ~np.isnan(numbers)
        hit.flags.writeable = False
        if len(self._masks) >= _CONDITION_CACHE:
            self._masks = {}  # placeholder values vary without bound: start over, never grow
        self._masks[key] = hit
        return hit


@dataclass(frozen=True)
class UserData:
    """What the filter may ask about the user: their events and their metadata."""

    events: Sequence[Event] = ()
    properties: Mapping[str, Any] | None = None
    # The normalised fields of the item a related-items request is about (CurrentItem.FIELD).
    current_item: Mapping[str, Any] | None = None


def _values(
    cond: Condition,
    resolved: Mapping[str, list[str]],
    current_item: Mapping[str, Any] | None = None,
) -> list[str] | None:
    out: list[str] = []
    for value in cond.values:
        if value.kind == "placeholder":
            given = resolved.get(value.text)
            if given is None:
                return None
            out.extend(given)
        elif value.kind == "current_item":
            raw = (current_item or {}).get(field_name(value.text))
            if cond.is_list:
                out.extend(_texts(raw))
            elif not np.isnan(number := _number(raw)):
                out.append(np.format_float_positional(number, trim="-"))
        else:
            out.append(value.text)
    return out


def _user_holds(cond: Condition, values: list[str], properties: Mapping[str, Any]) -> bool:
    raw = properties.get(field_name(cond.field))
    if cond.is_list:
        texts = _texts(raw)
        if not texts:
            return False
        hit = bool(set(texts) & set(values))
        return hit if cond.op == "IN" else not hit
    number = _number(raw)
    bound = parse_number(values[0])
    return not np.isnan(number) and bool(_COMPARE[cond.op](number, bound))


def recent_events(events: Sequence[Event], per_type: int = MAX_EVENTS_PER_TYPE) -> list[Event]:
    """The events a Personalize filter sees: the newest `per_type` of each event type."""
    if len(events) <= per_type:
        return list(events)  # the common case: no type can have more than `per_type`
    seen: dict[str, int] = {}
    kept: list[Event] = []
    for event in reversed(events):
        kind = event[1].lower()
        if seen.get(kind, 0) < per_type:
            seen[kind] = seen.get(kind, 0) + 1
            kept.append(event)
    kept.reverse()
    return kept


class CompiledFilter:
    """A parsed filter, ready to evaluate against item arrays for any user and values."""

    def __init__(self, parsed: FilterExpression) -> None:
        self.parsed = parsed
        self.expression = parsed.source
        self.placeholders = parsed.placeholders
        self.needs_events = any(e.dataset == "Interactions" for e in parsed.expressions)
        self.needs_user = any(e.when for e in parsed.expressions)
        self.needs_current_item = parsed.needs_current_item

    def mask(
        self, items: ItemFields, values: Mapping[str, Sequence[str]], user: UserData
    ) -> np.ndarray:
        """Which of `items` pass; a FilterError (400) for missing or bad values."""
        if self.needs_current_item and user.current_item is None:
            raise CurrentItemFilterError
        resolved = resolve(self.placeholders, values)
        include: np.ndarray | None = None
        exclude: np.ndarray | None = None
        events: list[Event] | None = None
        for expr in self.parsed.expressions:
            if not self._applies(expr, resolved, user):
                continue
            if expr.dataset == "Items":
                hit = self._items(expr, items, resolved, user.current_item)
            else:
                if events is None:
                    events = recent_events(user.events)
                hit = self._interactions(expr, items, resolved, events)
            if expr.include:
                include = hit if include is None else include | hit
            else:
                exclude = hit if exclude is None else exclude | hit
        allowed = np.ones(items.size, dtype=bool) if include is None else include.copy()
        if exclude is not None:
            allowed &= ~exclude
        return allowed

    @staticmethod
    def _applies(expr: Expression, resolved: Mapping[str, list[str]], user: UserData) -> bool:
        for cond in expr.conditions():
            if _values(cond, resolved) is None:
                return False  # an EXCLUDE placeholder left out: the expression is skipped
        properties = normalise(user.properties or {})
        return all(_user_holds(c, _values(c, resolved) or [], properties) for c in expr.when)

    @staticmethod
    def _items(
        expr: Expression,
        items: ItemFields,
        resolved: Mapping[str, list[str]],
        current_item: Mapping[str, Any] | None,
    ) -> np.ndarray:
        result: np.ndarray | None = None
        for conj in expr.any_of:
            part: np.ndarray | None = None
            for cond in conj:
                given = _values(cond, resolved, current_item) or []
                if not given and any(v.kind == "current_item" for v in cond.values):
                    hit = np.zeros(items.size, dtype=bool)  # the current item lacks the field
                else:
                    hit = items.condition(cond, given)
                part = hit if part is None else part & hit
            assert part is not None
            result = part if result is None else result | part
        assert result is not None
        return result

    @staticmethod
    def _interactions(
        expr: Expression,
        items: ItemFields,
        resolved: Mapping[str, list[str]],
        events: Iterable[Event],
    ) -> np.ndarray:
        tests = [
            [(c.op == "IN", {v.lower() for v in _values(c, resolved) or []}) for c in conj]
            for conj in expr.any_of
        ]

        def passes(event_type: str) -> bool:
            kind = event_type.lower()
            return any(
                all(positive == ("*" in types or kind in types) for positive, types in conj)
                for conj in tests
            )

        # Decide per distinct event type (a handful), then one tight pass over the events.
        passing = {kind for kind in {event[1] for event in events} if passes(kind)}
        hit = np.zeros(items.size, dtype=bool)
        if not passing:
            return hit
        index, size = items.index, items.size
        found = (index.get(item_id) for item_id, kind, _ in events if kind in passing)
        positions = [pos for pos in found if pos is not None and pos < size]
        if positions:
            hit[np.asarray(positions, dtype=np.int64)] = True
        return hit


def compile_filter(expression: str) -> CompiledFilter:
    return CompiledFilter(parse(expression))
