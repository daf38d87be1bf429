"""Filter placeholder values: Personalize's limits, reading them from a request, checking them
against what an expression needs, and encoding them as GetRecommendations' `filterValues`.

Pure standard library, no lark or numpy: the `personalize` provider on Lambda encodes values with
it, and the local engine checks values with the same rules, so both providers accept and refuse
the same requests.

`filterValues` format (Personalize API reference, GetRecommendations): one entry per `$NAME`
(case-sensitive), string values double-quoted and comma-separated (`"\\"a\\",\\"b\\""`), numbers
unquoted, at most 25 entries and 1,000 characters per value. An EXCLUDE expression whose
placeholder is not given is skipped; INCLUDE expressions need all of theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from chalicelib.filters.errors import FilterError, MissingFilterValueError

MAX_EXPRESSION_CHARS = 2500  # CreateFilter's filterExpression
MAX_PLACEHOLDERS = 25  # entries in filterValues
MAX_PLACEHOLDER_NAME = 50
MAX_VALUES = 25  # values given for one placeholder
MAX_ENCODED_CHARS = 1000  # one filterValues entry
MAX_FIELDS_PER_FILTER = 5
NUMBER_PATTERN = r"-?\d+(\.\d+)?"
_NUMBER = re.compile(rf"^{NUMBER_PATTERN}$")


@dataclass(frozen=True)
class PlaceholderUse:
    kind: Literal["list", "number"]  # in `IN ($X)`, or in a comparison `< $X`
    required: bool  # used in an INCLUDE expression


@dataclass(frozen=True, slots=True)
class FilterRequest:
    name: str
    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The item related items are asked for: what `CurrentItem.FIELD` in the expression reads.
    current_item: str | None = None


def parse_number(text: str) -> float | None:
    """A filter number: plain decimal, as Personalize writes them (no exponent, nan or inf)."""
    text = text.strip()
    return float(text) if _NUMBER.match(text) else None


# -- reading values from a request ---------------------------------------------------------------


def values_from_query(
    query: Mapping[str, Sequence[str]], reserved: Iterable[str] = ()
) -> dict[str, list[str]]:
    """`?CATEGORY=a&CATEGORY=b` and `?CATEGORY=a,b` both give `{"CATEGORY": ["a", "b"]}`.

    Values are data: they are only ever compared with item and event fields, never spliced into
    an expression, so no value can change what a filter means.
    """
    skip = set(reserved)
    values: dict[str, list[str]] = {}
    for key, raw_values in query.items():
        if key in skip:
            continue
        parts = [part.strip() for raw in raw_values for part in str(raw).split(",")]
        values[key] = [p for p in parts if p]
    return values


def resolve(
    uses: Mapping[str, PlaceholderUse], given: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The values of the placeholders that were given, checked; a missing required one (used
    by an INCLUDE expression) is a MissingFilterValueError naming it."""
    out: dict[str, list[str]] = {}
    for name, use in uses.items():
        values = [v for v in given.get(name, ()) if v != ""]
        if not values:
            if use.required:
                raise MissingFilterValueError(name)
            continue
        if len(values) > MAX_VALUES:
            raise FilterError(f"${name} takes at most {MAX_VALUES} values; {len(values)} given")
        if use.kind == "number":
            if len(values) != 1:
                raise FilterError(f"${name} is compared with a number: give one value")
            if parse_number(values[0]) is None:
                raise FilterError(f"${name} must be a number, like 42 or 9.99")
        out[name] = values
    return out


# -- Personalize's filterValues ------------------------------------------------------------------


def encode(
    uses: Mapping[str, PlaceholderUse], given: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """`filterValues` for GetRecommendations / GetPersonalizedRanking."""
    out: dict[str, str] = {}
    for name, values in resolve(uses, given).items():
        if uses[name].kind == "number":
            encoded = values[0].strip()
        else:
            if any('"' in v for v in values):
                # Personalize documents no escape for a quote inside a quoted value: refuse it
                # rather than guess (the local engine accepts it; no shop id or category has one).
                raise FilterError(f"a value of ${name} contains a double quote")
            encoded = ",".join(f'"{v}"' for v in values)
        if len(encoded) > MAX_ENCODED_CHARS:
            raise FilterError(
                f"the values of ${name} are {len(encoded)} characters once encoded; "
                f"Personalize takes at most {MAX_ENCODED_CHARS}"
            )
        out[name] = encoded
    return out


# A lexer, not a parser: on Lambda (no lark) this finds each placeholder's use from the tokens
# around it. The full grammar (chalicelib.filters.language) has already validated the
# expression at config load / `setup`, and CreateFilter validated it again; a property test
# checks this scan against the parser's AST on random expressions.
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"[^"\\]*(?:\\.[^"\\]*)*")|(?P<placeholder>\$[A-Za-z0-9_]+)'
    r"|(?P<cmp>!=|<=|>=|=|<|>)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>\S))"
)


def scan_placeholders(expression: str) -> dict[str, PlaceholderUse]:
    """Each `$NAME` of a (valid) expression: a list or a number, required or not."""
    uses: dict[str, PlaceholderUse] = {}
    include = False
    operator: Literal["list", "number"] = "list"
    previous = ""
    for match in _TOKEN.finditer(expression):
        kind, text = match.lastgroup, match.group(match.lastgroup or 0)
        if kind == "word" and previous != ".":
            upper = text.upper()
            if upper in ("INCLUDE", "EXCLUDE"):
                include = upper == "INCLUDE"
            elif upper == "IN":
                operator = "list"
        elif kind == "cmp":
            operator = "number"
        elif kind == "placeholder":
            name = text[1:]
            seen = uses.get(name)
            uses[name] = PlaceholderUse(operator, include or bool(seen and seen.required))
        previous = text
    return uses


def encode_filter_values(expression: str, given: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """`filterValues` for a configured expression and a request's values (see `encode`)."""
    return encode(scan_placeholders(expression), given)


def uses_current_item(expression: str) -> bool:
    """Whether a (valid) expression reads `CurrentItem.FIELD` (related items only)."""
    previous = ""
    for match in _TOKEN.finditer(expression):
        text = match.group(match.lastgroup or 0)
        if match.lastgroup == "word" and text == "CurrentItem" and previous != ".":
            return True
        previous = text
    return False
