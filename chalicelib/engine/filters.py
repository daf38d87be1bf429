"""Personalize filter expressions: parsed with a Lark grammar into a small typed AST, then
evaluated to a boolean mask over the model's items.

Covered so far: `INCLUDE|EXCLUDE ItemID WHERE` conditions on `Interactions.EVENT_TYPE` and on
`Items.FIELD` (`IN`, `NOT IN`, `=`, `<`, `<=`, `>`, `>=`), `AND`/`OR`, `$PLACEHOLDER` values and `|`
to combine expressions (includes are a union, excludes are subtracted).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from lark import Lark, Token, Transformer, UnexpectedInput

from chalicelib.catalogue import Catalogue, field_name
from chalicelib.providers.base import FilterError

MAX_EXPRESSION = 2500
GRAMMAR = r"""
    start: clause ("|" clause)*
    clause: ACTION "ItemID"i "WHERE"i disj
    disj: conj ("OR"i conj)*
    conj: cond ("AND"i cond)*
    cond: DATASET "." FIELD OP values
    values: "(" value ("," value)* ")" | value
    value: ESCAPED_STRING -> string
         | SIGNED_NUMBER -> number
         | "$" NAME -> placeholder
         | "*" -> star
    ACTION.2: /INCLUDE|EXCLUDE/i
    DATASET.2: /Interactions|Items/
    FIELD: /[A-Za-z_][A-Za-z0-9_]*/
    OP: /NOT\s+IN/i | /IN/i | "<=" | ">=" | "=" | "<" | ">"
    %import common.ESCAPED_STRING
    %import common.SIGNED_NUMBER
    %import common.CNAME -> NAME
    %import common.WS
    %ignore WS
"""
_PARSER = Lark(GRAMMAR, parser="lalr")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Value:
    kind: str  # "string" | "number" | "placeholder" | "star"
    text: str


@dataclass(frozen=True)
class Condition:
    dataset: str
    field: str
    op: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Clause:
    include: bool
    any_of: tuple[tuple[Condition, ...], ...]  # OR of ANDs


@dataclass(frozen=True)
class FilterContext:
    item_ids: np.ndarray
    item_index: Mapping[str, int]
    user_events: Sequence[tuple[str, str, float]]  # (item_id, event_type, ts)
    catalogue: Catalogue


class _ToAst(Transformer[Token, Any]):
    def start(self, clauses: list[Clause]) -> tuple[Clause, ...]:
        return tuple(clauses)

    def clause(self, parts: list[Any]) -> Clause:
        return Clause(parts[0].upper() == "INCLUDE", parts[1])

    def disj(self, conjs: list[tuple[Condition, ...]]) -> tuple[tuple[Condition, ...], ...]:
        return tuple(conjs)

    def conj(self, conds: list[Condition]) -> tuple[Condition, ...]:
        return tuple(conds)

    def cond(self, parts: list[Any]) -> Condition:
        dataset, field, op, values = parts
        op = " ".join(str(op).upper().split())
        if str(dataset) == "Interactions" and str(field).upper() != "EVENT_TYPE":
            raise FilterError("only Interactions.EVENT_TYPE can be filtered")
        if op in _COMPARE and any(v.kind == "string" for v in values):
            raise FilterError(f"{op} compares numbers; {field} was given a string")
        return Condition(str(dataset), str(field), op, values)

    def values(self, vals: list[Value]) -> tuple[Value, ...]:
        return tuple(vals)

    def string(self, tok: list[Token]) -> Value:
        return Value("string", tok[0][1:-1].replace('\\"', '"'))

    def number(self, tok: list[Token]) -> Value:
        return Value("number", str(tok[0]))

    def placeholder(self, tok: list[Token]) -> Value:
        return Value("placeholder", str(tok[0]))

    def star(self, _: list[Token]) -> Value:
        return Value("star", "*")


class CompiledFilter:
    def __init__(self, expression: str, clauses: tuple[Clause, ...]) -> None:
        self.expression = expression
        self.clauses = clauses
        self.placeholders = {
            v.text
            for c in clauses
            for conj in c.any_of
            for cond in conj
            for v in cond.values
            if v.kind == "placeholder"
        }

    def mask(self, ctx: FilterContext, values: Mapping[str, Sequence[str]]) -> np.ndarray:
        """Which of `ctx.item_ids` the filter lets through for this user and these values."""
        n = len(ctx.item_ids)
        include: np.ndarray | None = None
        exclude = np.zeros(n, dtype=bool)
        for clause in self.clauses:
            hit = self._clause(clause, ctx, values)
            if hit is None:  # an EXCLUDE whose placeholder was not given is skipped
                continue
            if clause.include:
                include = hit if include is None else include | hit
            else:
                exclude |= hit
        allowed = np.ones(n, dtype=bool) if include is None else include
        return allowed & ~exclude

    def _clause(
        self, clause: Clause, ctx: FilterContext, values: Mapping[str, Sequence[str]]
    ) -> np.ndarray | None:
        result = np.zeros(len(ctx.item_ids), dtype=bool)
        for conj in clause.any_of:
            part = np.ones(len(ctx.item_ids), dtype=bool)
            for cond in conj:
                resolved = _resolve(cond.values, values)
                if resolved is None:
                    if clause.include:
                        missing = next(v.text for v in cond.values if v.kind == "placeholder")
                        raise FilterError(f"missing value for ${missing}")
                    return None
                part &= _condition(cond, resolved, ctx)
            result |= part
        return result


def _resolve(vals: tuple[Value, ...], given: Mapping[str, Sequence[str]]) -> list[str] | None:
    out: list[str] = []
    for v in vals:
        if v.kind != "placeholder":
            out.append(v.text)
        elif given.get(v.text):
            out.extend(given[v.text])
        else:
            return None
    if len(out) > 25:
        raise FilterError("a filter takes at most 25 values")
    return out


def _condition(cond: Condition, vals: list[str], ctx: FilterContext) -> np.ndarray:
    n = len(ctx.item_ids)
    if cond.dataset == "Interactions":
        wanted = {v.lower() for v in vals}
        hit = np.zeros(n, dtype=bool)
        for item_id, event_type, _ in ctx.user_events:
            idx = ctx.item_index.get(item_id)
            if idx is not None and ("*" in wanted or event_type.lower() in wanted):
                hit[idx] = True
        return ~hit if cond.op == "NOT IN" else hit
    column = ctx.catalogue.column(field_name(cond.field))
    items = ctx.item_ids.tolist()
    if cond.op in ("IN", "NOT IN"):
        wanted = set(vals)
        hit = np.fromiter(
            (bool(wanted & set(str(column.get(i, "")).split("|"))) for i in items), bool, n
        )
        return ~hit if cond.op == "NOT IN" else hit
    try:
        bound = float(vals[0])
    except ValueError:
        raise FilterError(f"{cond.field} {cond.op} needs a number, got {vals[0]!r}") from None
    compare = _COMPARE[cond.op]
    return np.fromiter((_number_ok(column.get(i), bound, compare) for i in items), bool, n)


def _number_ok(value: Any, bound: float, compare: Callable[[float, float], bool]) -> bool:
    try:
        return compare(float(value), bound)
    except (TypeError, ValueError):
        return False


def compile_filter(expression: str) -> CompiledFilter:
    if len(expression) > MAX_EXPRESSION:
        raise FilterError(f"a filter expression is at most {MAX_EXPRESSION} characters")
    try:
        tree = _PARSER.parse(expression)
    except UnexpectedInput as exc:
        context = exc.get_context(expression).rstrip()
        raise FilterError(f"syntax error at column {exc.column}:\n{context}") from None
    try:
        clauses = _ToAst().transform(tree)
    except Exception as exc:  # lark wraps transformer errors in VisitError
        cause = getattr(exc, "orig_exc", exc)
        raise FilterError(str(cause)) from None
    return CompiledFilter(expression, clauses)
