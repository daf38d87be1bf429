"""Item-attribute expressions of segments (Personalize's Item-Attribute-Affinity input,
`ITEMS.CATEGORY = "garden" OR ITEMS.CATEGORY = "toys"`): which catalogue items they select.

Clauses are `ITEMS.<FIELD> = "<value>"`, joined all by `AND` or all by `OR` (as Personalize's
batch segment input takes them); a field with several values (`"garden|tools"`, or a list)
matches when one of them does. Field names match whatever their case (`CATEGORY`, `category`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.catalogue import field_name

_CLAUSE = re.compile(r'^\s*ITEMS\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$', re.I)
_JOIN = re.compile(r"\s+(AND|OR)\s+(?=ITEMS\.)", re.I)
MAX_EXPRESSION = 1000


class SegmentError(ValueError):
    """A segment request that cannot be run; the message says what to fix."""


@dataclass(frozen=True)
class AttributeExpression:
    clauses: tuple[tuple[str, str], ...]  # (normalised field, value)
    any_of: bool  # OR; AND otherwise

    @classmethod
    def parse(cls, text: str) -> AttributeExpression:
        if not text.strip() or len(text) > MAX_EXPRESSION:
            raise SegmentError(f"an attribute expression is 1-{MAX_EXPRESSION} characters")
        parts = _JOIN.split(text.strip())
        clauses, joins = parts[::2], {j.upper() for j in parts[1::2]}
        if len(joins) > 1:
            raise SegmentError("join the clauses all with AND or all with OR")
        parsed = []
        for clause in clauses:
            found = _CLAUSE.match(clause)
            if found is None:
                raise SegmentError(f'{clause.strip()!r} is not ITEMS.FIELD = "value"')
            value = found.group(2).replace('\\"', '"')
            parsed.append((field_name(found.group(1)), value))
        return cls(tuple(parsed), joins == {"OR"})

    def matches(self, fields: Mapping[str, Any]) -> bool:
        hits = (_has(fields.get(name), value) for name, value in self.clauses)
        return any(hits) if self.any_of else all(hits)

    def items(self, catalogue: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
        return [item for item, fields in catalogue if self.matches(fields)]


def _has(found: Any, value: str) -> bool:
    if found is None:
        return False
    values = found if isinstance(found, list | tuple) else str(found).split("|")
    return any(str(v).strip().lower() == value.strip().lower() for v in values)
