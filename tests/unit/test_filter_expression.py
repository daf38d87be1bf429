"""The filter grammar: what Personalize accepts parses, and every refusal says where (column and a
caret under the expression) and what was expected."""

from __future__ import annotations

import pytest

from chalicelib.filters import FilterError
from chalicelib.filters.language import check_all, parse

VALID = [
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
    "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) | EXCLUDE ItemID WHERE "
    'Interactions.EVENT_TYPE IN ("click","stream")',
    "INCLUDE ItemID WHERE Items.PRICE <= $PRICE IF CurrentUser.AGE > 18",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")',
    'INCLUDE ItemID WHERE Items.GENRE NOT IN ("horror") AND Items.YEAR >= 2000 OR '
    'Items.PROMOTED IN ("Y") IF CurrentUser.AGE >= $AGE AND CurrentUser.TIER IN ("gold")',
    "INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP < $DATE",
    "include ItemID where Items.PRICE != -1.5",
    'EXCLUDE ItemID WHERE Items.NAME IN ("say \\"hi\\"", "a|b", "")',
    "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE",
    "EXCLUDE ItemID WHERE Items.BRAND NOT IN CurrentItem.BRAND",
]


@pytest.mark.parametrize("expression", VALID)
def test_documented_expressions_parse(expression: str) -> None:
    assert parse(expression).expressions


def test_placeholders_know_their_kind_and_whether_they_are_required() -> None:
    parsed = parse(
        "INCLUDE ItemID WHERE Items.CATEGORY IN ($CAT) IF CurrentUser.AGE > $AGE | "
        "EXCLUDE ItemID WHERE Items.PRICE > $MAX | EXCLUDE ItemID WHERE Items.BRAND IN ($CAT)"
    )
    uses = {name: (u.kind, u.required) for name, u in parsed.placeholders.items()}
    assert uses == {
        "CAT": ("list", True),
        "AGE": ("number", True),
        "MAX": ("number", False),
    }


def test_escaped_quotes_are_unescaped() -> None:
    cond = parse('EXCLUDE ItemID WHERE Items.NAME IN ("say \\"hi\\"")').expressions[0].any_of[0][0]
    assert cond.values[0].text == 'say "hi"'


# (expression, column, words the message must contain)
ERRORS = [
    ("", None, ["cannot be empty"]),
    ("INCLUDE ItemID WHERE Items.PRICE LIKE 3", 34, ["expected IN or NOT IN", "found 'LIKE'"]),
    ('INCLUDE ItemID WHERE Items.PRICE <= "10"', 37, ["a number", "$PLACEHOLDER"]),
    ("INCLUDE ItemID WHERE Items.CATEGORY IN (", 41, ["end of the expression"]),
    ("INCLUDE ItemID WHERE Items.CATEGORY IN ()", 41, ['a "quoted string"']),
    ("INCLUDE ItemID WHERE Items.CATEGORY IN ($A, $B)", 43, ['")"']),
    ('INCLUDE ItemID WHERE Items.CATEGORY IN ($A, "b")', 43, ['")"']),
    ("INCLUDE ItemID Items.CATEGORY IN ($A)", 16, ["expected WHERE"]),
    ("KEEP ItemID WHERE Items.CATEGORY IN ($A)", 1, ["INCLUDE or EXCLUDE"]),
    ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a") ; DROP', 46, ["|", "found ';'"]),
    ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a") |', 47, ["INCLUDE or EXCLUDE"]),
    ('INCLUDE ItemID WHERE Items.A IN ("a") IF Items.B IN ("b")', 42, ["CurrentUser"]),
    (
        'INCLUDE ItemID WHERE Items.A IN ("a") IF CurrentUser.B IN ("b") OR CurrentUser.C IN ("c")',
        65,
        ["expected AND"],
    ),
    (
        'INCLUDE ItemID WHERE Items.A IN ("a") IF CurrentUser.B > 1 IF CurrentUser.C > 1',
        60,
        ["found 'IF'"],
    ),
    ('INCLUDE UserID WHERE Items.A IN ("a")', 9, ["only ItemID filters"]),
    ('INCLUDE ItemID WHERE Users.AGE IN ("a")', 22, ["Users filters are not supported"]),
    ('INCLUDE ItemID WHERE CurrentUser.AGE IN ("a")', 22, ["trailing IF"]),
    ('INCLUDE ItemID WHERE Interactions.PRICE IN ("a")', 35, ["only Interactions.EVENT_TYPE"]),
    ("INCLUDE ItemID WHERE Interactions.EVENT_TYPE > 3", 35, ["takes IN or NOT IN"]),
    (
        'EXCLUDE ItemID WHERE Items.A IN ("a") AND Interactions.EVENT_TYPE IN ("b")',
        43,
        ["cannot be mixed in one expression", "join two expressions with |"],
    ),
    (
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("b") OR Items.A IN ("a")',
        58,
        ["cannot be mixed"],
    ),
    (
        "INCLUDE ItemID WHERE Items.A IN ($X) | EXCLUDE ItemID WHERE Items.P > $X",
        61,
        ["$X is used both as a list (IN) and as a number"],
    ),
    ("INCLUDE ItemID WHERE Items.A IN ($" + "X" * 51 + ")", 34, ["at most 50 characters"]),
    ("INCLUDE ItemID WHERE Items.A IN ($X) @", 38, ["found '@'"]),
    ("INCLUDE ItemID WHERE CurrentItem.PRICE < 3", 22, ["CurrentItem is a value"]),
    ("INCLUDE ItemID WHERE Items.PRICE < CurrentItem", 47, ['expected "."']),
    (
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN CurrentItem.TYPE",
        35,
        ["only Items conditions can compare with CurrentItem"],
    ),
    (
        "INCLUDE ItemID WHERE Items.A > 1 IF CurrentUser.AGE > CurrentItem.AGE",
        49,
        ["only Items conditions can compare with CurrentItem"],
    ),
]


@pytest.mark.parametrize(("expression", "column", "words"), ERRORS)
def test_refusals_say_where_and_what_was_expected(
    expression: str, column: int | None, words: list[str]
) -> None:
    with pytest.raises(FilterError) as info:
        parse(expression)
    message = str(info.value)
    if column is not None:
        assert f"column {column}:" in message
        snippet, caret = message.split("\n")[1:3]
        # The caret sits under the offending character (or just past the end).
        at = caret.index("^")
        assert snippet[at : at + 1] == expression[column - 1 : column]
    for word in words:
        assert word in message


def test_expression_length_limit_is_personalizes_2500() -> None:
    base = 'INCLUDE ItemID WHERE Items.A IN ("'
    fits = base + "x" * (2500 - len(base) - 2) + '")'
    assert len(fits) == 2500
    parse(fits)
    with pytest.raises(FilterError, match="at most 2500 characters; this one has 2501"):
        parse(fits[:-2] + 'x")')


def test_at_most_25_placeholders() -> None:
    parts = [f"EXCLUDE ItemID WHERE Items.A IN ($P{n})" for n in range(26)]
    parse(" | ".join(parts[:25]))
    with pytest.raises(FilterError, match="at most 25 placeholders; this one has 26"):
        parse(" | ".join(parts))


def test_at_most_5_fields_per_filter() -> None:
    conds = [f'Items.F{n} IN ("x")' for n in range(6)]
    parse("INCLUDE ItemID WHERE " + " OR ".join(conds[:5]))
    with pytest.raises(FilterError, match="at most 5 distinct fields; this one tests 6"):
        parse("INCLUDE ItemID WHERE " + " OR ".join(conds))


def test_configuration_check_names_the_bad_filter_and_limits_fields_across_filters() -> None:
    with pytest.raises(FilterError, match="filter 'broken': syntax error at column"):
        check_all({"ok": "INCLUDE ItemID WHERE Items.A IN ($A)", "broken": "INCLUDE ItemID"})
    many = {f"f{n}": f'INCLUDE ItemID WHERE Items.F{n} IN ("x")' for n in range(11)}
    with pytest.raises(FilterError, match="11 distinct fields"):
        check_all(many)
    assert set(check_all(dict(list(many.items())[:10]))) == {f"f{n}" for n in range(10)}


def test_aws_setup_refuses_a_bad_expression_before_calling_personalize(
    tmp_path, capsys, monkeypatch
) -> None:
    from chalicelib import cli
    from chalicelib.seam import runtime
    from chalicelib.settings import PROJECT_ROOT

    def no_aws(*_args, **_kwargs):  # pragma: no cover - reaching it is the failure
        raise AssertionError("setup called Personalize with a bad filter")

    monkeypatch.setattr("chalicelib.providers.personalize.setup.setup", no_aws)
    monkeypatch.setenv("RECS_PROVIDER", "personalize")
    base = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    path = tmp_path / "recs.toml"
    path.write_text(base + "\nby-price = 'INCLUDE ItemID WHERE Items.PRICE < \"10\"'\n")
    runtime.reset()
    try:
        assert cli.main(["setup", "--config", str(path)]) == 2
    finally:
        runtime.reset()
    err = capsys.readouterr().err
    assert "setup: filter 'by-price': syntax error at column" in err
    assert "expected a $PLACEHOLDER, a number or CurrentItem.FIELD" in err
