"""Personalize's batch-inference JSON-lines files, independent of the provider: decoding a
line's `filterValues`, reading `--filter-value` options, and the summary of an output file
(lines, users, items per line, coverage) printed by `batch` and read by Braze push.

Input lines (PDG:batch-data-upload.md): `{"userId"}` (user-personalization, popularity-count),
`{"itemId"}` (similar-items), `{"userId", "itemList"}` (personalized-ranking), each optionally
with `"filterValues": {"NAME": "\\"a\\",\\"b\\""}`. Output lines: `{"input": ..., "output":
{"recommendedItems": [...], "scores": [...]}, "error": null}`; a line that failed has
`"output": null` and its reason in `"error"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_ITEM_LIST = 500  # Personalize's GetPersonalizedRanking / batch ranking input list


def decode_filter_values(encoded: Mapping[str, Any]) -> dict[str, list[str]]:
    """Personalize's per-line `filterValues` (`{"GENRE": "\\"horror\\",\\"comedy\\""}`, a number
    as `"12"`) as lists of plain values. A value that is not a string is a line error."""
    out: dict[str, list[str]] = {}
    for name, value in encoded.items():
        if not isinstance(value, str):
            raise ValueError(f'filterValues["{name}"] must be a string')
        text = value.strip()
        if text.startswith('"'):
            try:  # `"a","b"` with `\"` escapes is exactly a JSON array's inside
                parsed = json.loads(f"[{text}]")
            except json.JSONDecodeError:
                raise ValueError(f'filterValues["{name}"] is not a list of quoted values') from None
            out[name] = [str(v) for v in parsed]
        else:
            out[name] = [text] if text else []
    return out


def parse_filter_values(pairs: Sequence[str]) -> dict[str, list[str]]:
    """`--filter-value NAME=VALUE` options (repeatable) as {NAME: [VALUE, ...]}."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--filter-value takes NAME=VALUE, not {pair!r}")
        out.setdefault(name.strip().lstrip("$"), []).append(value)
    return out


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line."""
    with path.open(encoding="utf-8") as src:
        for number, raw in enumerate(src, start=1):
            if raw.strip():
                yield number, raw.rstrip("\n")


@dataclass
class Summary:
    """What a batch output holds, for a person to check before pushing it anywhere."""

    lines: int = 0
    answered: int = 0
    errors: int = 0
    users: int = 0
    items: int = 0  # lines asking for items related to an item
    items_per_line_min: int = 0
    items_per_line_mean: float = 0.0
    items_per_line_max: int = 0
    empty_lines: int = 0  # answered with no items (e.g. everything filtered out)
    distinct_items: int = 0
    catalogue_items: int | None = None
    coverage: float | None = None  # distinct recommended items / catalogue items
    first_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(path: Path, catalogue_items: int | None = None, keep_errors: int = 10) -> Summary:
    """Read an output file once, in constant memory except the set of distinct items."""
    summary = Summary(catalogue_items=catalogue_items)
    users: set[str] = set()
    seed_items: set[str] = set()
    distinct: set[str] = set()
    lengths_total = 0
    for number, raw in read_lines(path):
        summary.lines += 1
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            record = {"error": "the output line is not JSON"}
        if not isinstance(record, dict):
            record = {"error": "the output line is not a JSON object"}
        output = record.get("output")
        if record.get("error") or not isinstance(output, dict):
            summary.errors += 1
            if len(summary.first_errors) < keep_errors:
                summary.first_errors.append(f"line {number}: {record.get('error')}")
            continue
        summary.answered += 1
        asked = record.get("input")
        given: dict[str, Any] = asked if isinstance(asked, dict) else {}
        if isinstance(given.get("userId"), str):
            users.add(given["userId"])
        elif isinstance(given.get("itemId"), str):
            seed_items.add(given["itemId"])
        recommended = [i for i in output.get("recommendedItems") or [] if isinstance(i, str)]
        n = len(recommended)
        summary.items_per_line_min = (
            n if summary.answered == 1 else min(n, summary.items_per_line_min)
        )
        summary.items_per_line_max = max(n, summary.items_per_line_max)
        summary.empty_lines += n == 0
        lengths_total += n
        distinct.update(recommended)
    summary.users, summary.items, summary.distinct_items = (
        len(users),
        len(seed_items),
        len(distinct),
    )
    if summary.answered:
        summary.items_per_line_mean = round(lengths_total / summary.answered, 2)
    if catalogue_items:
        summary.coverage = round(len(distinct) / catalogue_items, 4)
    return summary
