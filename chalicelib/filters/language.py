"""Personalize filter expressions: the Lark grammar, the typed AST it becomes, and Personalize's
rules and limits, checked when the configuration is loaded (local) or before `setup` (AWS).

Imports lark but not numpy: the CLI can validate a configuration without the engine. Evaluation
lives in `chalicelib.engine.filters`; the request-side value rules in `chalicelib.filters.values`.

The language (Personalize developer guide, "Filter expression structure and elements"):

    (INCLUDE|EXCLUDE) ItemID WHERE <Dataset>.<FIELD> <test> [(AND|OR) <same dataset> <test> ...]
        [IF CurrentUser.<FIELD> <test> [AND CurrentUser.<FIELD> <test> ...]]
      [ | <another expression> ...]

    <test> := IN (<literal>, ...) | IN ($NAME) | NOT IN (...)
            | (= | != | < | <= | > | >=) <number or $NAME>
            | IN CurrentItem.<FIELD> | NOT IN CurrentItem.<FIELD>
            | (= | != | < | <= | > | >=) CurrentItem.<FIELD>

`CurrentItem.<FIELD>` (Items conditions only) is the value of that field on the item the request
asks related items for, so such a filter works for related items only.

AND binds tighter than OR. `Interactions` can only test `EVENT_TYPE` (case-insensitively; "*"
means every type); one expression never mixes datasets (join them with `|`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from lark.exceptions import UnexpectedToken, VisitError

from chalicelib.filters.errors import FilterError
from chalicelib.filters.values import (
    MAX_EXPRESSION_CHARS,
    MAX_FIELDS_PER_FILTER,
    MAX_PLACEHOLDER_NAME,
    MAX_PLACEHOLDERS,
    NUMBER_PATTERN,
    PlaceholderUse,
)

GRAMMAR = rf"""
    start: expression (PIPE expression)*
    expression: ACTION TARGET WHERE disjunction user_if?
    disjunction: conjunction (OR conjunction)*
    conjunction: condition (AND condition)*
    condition: DATASET DOT FIELD test
    user_if: IF user_condition (AND user_condition)*
    user_condition: CURRENT_USER DOT FIELD test
    test: IN_OP LPAR literal (COMMA literal)* RPAR      -> in_literals
        | IN_OP LPAR PLACEHOLDER RPAR                   -> in_placeholder
        | CMP NUMBER                                    -> cmp_number
        | CMP PLACEHOLDER                               -> cmp_placeholder
        | IN_OP CURRENT_ITEM DOT FIELD                  -> in_current
        | CMP CURRENT_ITEM DOT FIELD                    -> cmp_current
    literal: STRING | NUMBER

    ACTION.3: /INCLUDE\b/i | /EXCLUDE\b/i
    TARGET.3: /ItemID\b/i | /ActionID\b/i | /UserID\b/i
    WHERE.3: /WHERE\b/i
    AND.3: /AND\b/i
    OR.3: /OR\b/i
    IF.3: /IF\b/i
    CURRENT_USER.3: /CurrentUser\b/
    CURRENT_ITEM.3: /CurrentItem\b/
    DATASET.2: /(Items|Interactions|Users|Actions|ActionInteractions|CurrentUser|CurrentItem)\b/
    IN_OP.3: /NOT[ \t\r\n]+IN\b/i | /IN\b/i
    CMP: "!=" | "<=" | ">=" | "=" | "<" | ">"
    FIELD: /[A-Za-z_][A-Za-z0-9_]*/
    PLACEHOLDER: /\$[A-Za-z0-9_]+/
    STRING: /"[^"\\]*(\\.[^"\\]*)*"/
    NUMBER: /{NUMBER_PATTERN}/
    PIPE: "|"
    DOT: "."
    LPAR: "("
    RPAR: ")"
    COMMA: ","
    %import common.WS
    %ignore WS
"""
_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual")

# What each terminal means to someone writing an expression (for "expected ..." messages).
_EXPECTED = {
    "ACTION": "INCLUDE or EXCLUDE",
    "TARGET": "ItemID",
    "WHERE": "WHERE",
    "AND": "AND",
    "OR": "OR",
    "IF": "IF CurrentUser...",
    "CURRENT_USER": "CurrentUser",
    "DATASET": "Items or Interactions",
    "IN_OP": "IN or NOT IN",
    "CMP": "=, !=, <, <=, > or >=",
    "FIELD": "a field name",
    "PLACEHOLDER": "a $PLACEHOLDER",
    "STRING": 'a "quoted string"',
    "NUMBER": "a number",
    "CURRENT_ITEM": "CurrentItem.FIELD",
    "PIPE": "| and another expression",
    "DOT": '"."',
    "LPAR": '"("',
    "RPAR": '")"',
    "COMMA": '","',
    "$END": "the end of the expression",
}
_ORDER = list(_EXPECTED)
MAX_FIELDS_ACROSS_FILTERS = 10  # Personalize's limit across a dataset group's filters

FilterDataset = Literal["Items", "Interactions", "CurrentUser"]


@dataclass(frozen=True)
class Value:
    kind: Literal["string", "number", "placeholder", "current_item"]
    # The literal's value (unquoted, unescaped), the placeholder's name (no "$") or the field of
    # the current item (CurrentItem.PRICE: "PRICE").
    text: str


@dataclass(frozen=True)
class Condition:
    dataset: FilterDataset
    field: str  # as written, e.g. CATEGORY_L1
    op: str  # IN, NOT IN, =, !=, <, <=, >, >=
    values: tuple[Value, ...]
    column: int

    @property
    def is_list(self) -> bool:
        return self.op in ("IN", "NOT IN")


@dataclass(frozen=True)
class Expression:
    """One `|`-separated part: include or exclude the items matching `any_of` (an OR of ANDs),
    applied only when every condition in `when` (the `IF CurrentUser...` part) holds."""

    include: bool
    dataset: Literal["Items", "Interactions"]
    any_of: tuple[tuple[Condition, ...], ...]
    when: tuple[Condition, ...] = ()

    def conditions(self) -> Iterable[Condition]:
        for conj in self.any_of:
            yield from conj
        yield from self.when


@dataclass(frozen=True)
class FilterExpression:
    source: str
    expressions: tuple[Expression, ...]
    placeholders: dict[str, PlaceholderUse] = field(default_factory=dict)

    @property
    def fields(self) -> set[tuple[str, str]]:
        return {(c.dataset, c.field.upper()) for e in self.expressions for c in e.conditions()}

    @property
    def needs_current_item(self) -> bool:
        return any(
            v.kind == "current_item"
            for e in self.expressions
            for c in e.conditions()
            for v in c.values
        )


def _where(source: str, column: int) -> str:
    """`column N` plus the expression with a caret under that column (1-based)."""
    line = source.replace("\n", " ")
    start = max(0, column - 1 - 40)
    snippet = line[start : column - 1 + 40]
    caret = " " * (column - 1 - start) + "^"
    return f"column {column}:\n  {snippet}\n  {caret}"


class _Refused(Exception):
    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


def _unquote(token: str) -> str:
    body = token[1:-1]
    out, escaped = [], False
    for ch in body:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


class _ToAst(Transformer[Token, Any]):
    """Builds the AST and applies the rules a grammar cannot say, each at its token's column."""

    def start(self, parts: list[Any]) -> tuple[Expression, ...]:
        return tuple(p for p in parts if isinstance(p, Expression))

    def expression(self, parts: list[Any]) -> Expression:
        action, target, _where_kw, any_of, *rest = parts
        if str(target).lower() != "itemid":
            raise _Refused(
                target.column,
                f"only ItemID filters are supported (item recommendations), not {target}",
            )
        first = any_of[0][0]
        for conj in any_of:
            for cond in conj:
                if cond.dataset != first.dataset:
                    raise _Refused(
                        cond.column,
                        f"{cond.dataset} and {first.dataset} conditions cannot be mixed in one "
                        "expression: join two expressions with |",
                    )
        when = rest[0] if rest else ()
        return Expression(str(action).upper() == "INCLUDE", first.dataset, any_of, when)

    def disjunction(self, parts: list[Any]) -> tuple[tuple[Condition, ...], ...]:
        return tuple(p for p in parts if isinstance(p, tuple))

    def conjunction(self, parts: list[Any]) -> tuple[Condition, ...]:
        return tuple(p for p in parts if isinstance(p, Condition))

    def condition(self, parts: list[Any]) -> Condition:
        dataset, _dot, name, (op, values) = parts
        column = dataset.column
        if dataset == "CurrentUser":
            raise _Refused(column, "CurrentUser can only be tested in a trailing IF condition")
        if dataset == "CurrentItem":
            raise _Refused(column, "CurrentItem is a value, as in Items.PRICE < CurrentItem.PRICE")
        if dataset not in ("Items", "Interactions"):
            raise _Refused(
                column, f"{dataset} filters are not supported: use Items or Interactions"
            )
        if dataset == "Interactions":
            if name.upper() != "EVENT_TYPE":
                raise _Refused(name.column, "only Interactions.EVENT_TYPE can be filtered")
            if op not in ("IN", "NOT IN"):
                raise _Refused(name.column, "Interactions.EVENT_TYPE takes IN or NOT IN")
        if dataset != "Items" and any(v.kind == "current_item" for v in values):
            raise _Refused(name.column, "only Items conditions can compare with CurrentItem")
        return Condition(str(dataset), str(name), op, values, column)  # type: ignore[arg-type]

    def user_if(self, parts: list[Any]) -> tuple[Condition, ...]:
        return tuple(p for p in parts if isinstance(p, Condition))

    def user_condition(self, parts: list[Any]) -> Condition:
        dataset, _dot, name, (op, values) = parts
        if any(v.kind == "current_item" for v in values):
            raise _Refused(name.column, "only Items conditions can compare with CurrentItem")
        return Condition("CurrentUser", str(name), op, values, dataset.column)

    def in_literals(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        op = " ".join(str(parts[0]).upper().split())
        return op, tuple(p for p in parts if isinstance(p, Value))

    def in_placeholder(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        op = " ".join(str(parts[0]).upper().split())
        return op, (self._placeholder(parts[2]),)

    def cmp_number(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        return str(parts[0]), (Value("number", str(parts[1])),)

    def cmp_placeholder(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        return str(parts[0]), (self._placeholder(parts[1]),)

    def in_current(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        op = " ".join(str(parts[0]).upper().split())
        return op, (Value("current_item", str(parts[3])),)

    def cmp_current(self, parts: list[Any]) -> tuple[str, tuple[Value, ...]]:
        return str(parts[0]), (Value("current_item", str(parts[3])),)

    def literal(self, parts: list[Token]) -> Value:
        tok = parts[0]
        if tok.type == "STRING":
            return Value("string", _unquote(str(tok)))
        return Value("number", str(tok))

    @staticmethod
    def _placeholder(tok: Token) -> Value:
        name = str(tok)[1:]
        if len(name) > MAX_PLACEHOLDER_NAME:
            raise _Refused(
                tok.column or 0, f"a placeholder name is at most {MAX_PLACEHOLDER_NAME} characters"
            )
        return Value("placeholder", name)


def _describe(terminals: Iterable[str]) -> list[str]:
    names = sorted(set(terminals), key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))
    return list(dict.fromkeys(_EXPECTED.get(n, n) for n in names))


def _syntax_error(source: str, exc: UnexpectedInput) -> FilterError:
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        expected = _describe(exc.expected)
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            found = "the end of the expression"
            column = len(source) + 1
        else:
            found = repr(str(token))
            column = exc.column
    elif isinstance(exc, UnexpectedCharacters):
        expected = _describe(exc.allowed or ())
        found = repr(source[exc.pos_in_stream or 0])
        column = exc.column
    else:  # pragma: no cover - lark raises only the three above
        return FilterError(f"syntax error: {exc}")
    wanted = " or ".join(
        [", ".join(expected[:-1]), expected[-1]] if len(expected) > 1 else expected
    )
    wanted = wanted or "something else"
    return FilterError(
        f"syntax error at {_where(source, column)}\nexpected {wanted}, found {found}"
    )


def _placeholder_uses(
    expressions: tuple[Expression, ...], source: str
) -> dict[str, PlaceholderUse]:
    uses: dict[str, PlaceholderUse] = {}
    for expr in expressions:
        for cond in expr.conditions():
            for value in cond.values:
                if value.kind != "placeholder":
                    continue
                kind: Literal["list", "number"] = "list" if cond.is_list else "number"
                seen = uses.get(value.text)
                if seen is not None and seen.kind != kind:
                    raise FilterError(
                        f"${value.text} is used both as a list (IN) and as a number "
                        f"(comparison) at {_where(source, cond.column)}"
                    )
                required = expr.include or (seen is not None and seen.required)
                uses[value.text] = PlaceholderUse(kind, required)
    return uses


def parse(source: str) -> FilterExpression:
    """The AST of `source`, or a FilterError saying where and what was expected."""
    if not source.strip():
        raise FilterError("a filter expression cannot be empty")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise FilterError(
            f"a filter expression is at most {MAX_EXPRESSION_CHARS} characters; "
            f"this one has {len(source)}"
        )
    try:
        tree = _PARSER.parse(source)
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from None
    try:
        expressions = _ToAst().transform(tree)
    except VisitError as exc:
        cause = exc.orig_exc
        if isinstance(cause, _Refused):
            raise FilterError(f"{cause.message} at {_where(source, cause.column)}") from None
        raise
    placeholders = _placeholder_uses(expressions, source)
    if len(placeholders) > MAX_PLACEHOLDERS:
        raise FilterError(
            f"a filter takes at most {MAX_PLACEHOLDERS} placeholders; this one has "
            f"{len(placeholders)}"
        )
    result = FilterExpression(source, expressions, placeholders)
    if len(result.fields) > MAX_FIELDS_PER_FILTER:
        names = ", ".join(sorted(f"{d}.{f}" for d, f in result.fields))
        raise FilterError(
            f"a filter tests at most {MAX_FIELDS_PER_FILTER} distinct fields; this one tests "
            f"{len(result.fields)} ({names})"
        )
    return result


def check_all(filters: dict[str, str]) -> dict[str, FilterExpression]:
    """Parse every configured filter; the first bad one is refused, named, with its position."""
    parsed: dict[str, FilterExpression] = {}
    for name, source in filters.items():
        try:
            parsed[name] = parse(source)
        except FilterError as exc:
            raise FilterError(f"filter {name!r}: {exc}") from None
    fields = {f for p in parsed.values() for f in p.fields}
    if len(fields) > MAX_FIELDS_ACROSS_FILTERS:
        raise FilterError(
            f"the filters test {len(fields)} distinct fields; Personalize allows at most "
            f"{MAX_FIELDS_ACROSS_FILTERS} across a dataset group's filters"
        )
    return parsed
