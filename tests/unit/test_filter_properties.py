"""Property tests: any valid expression, with any values, evaluates without crashing, its result
obeys the `|` algebra, and the lark-free placeholder scan the Lambda uses agrees with the
parser."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.engine.filters import ItemFields, UserData, compile_filter
from chalicelib.filters import FilterError
from chalicelib.filters.values import scan_placeholders

CATALOGUE = {
    f"i{n}": {
        "PRICE": ["1", "9.99", "n/a", 25, 100.5, None][n % 6],
        "CATEGORY": ["shoes", "bags|gifts", "", 'say "hi"', "x,y"][n % 5],
        "GENDER": ["F", "M"][n % 2],
    }
    for n in range(30)
}
FIELDS = ItemFields(list(CATALOGUE), InMemoryCatalogue(CATALOGUE.items()))
EVENT_TYPES = ["View", "Purchase", "AddToCart", "purchase"]
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
safe_text = text.filter(lambda t: '"' not in t and "\\" not in t)
names = st.sampled_from(["A", "B", "C", "PRICE_MAX", "x_1"])
numbers = st.sampled_from(["0", "-1", "9.99", "25", "100.5", "1000000"])


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def list_test(draw: st.DrawFn, values: st.SearchStrategy[str], params: bool = True) -> str:
    op = draw(st.sampled_from(["IN", "NOT IN"]))
    if params and draw(st.booleans()):
        return f"{op} (${draw(names)}_L)"
    return f"{op} ({', '.join(quoted(v) for v in draw(st.lists(values, min_size=1, max_size=4)))})"


@st.composite
def number_test(draw: st.DrawFn, params: bool = True) -> str:
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
    value = f"${draw(names)}_N" if params and draw(st.booleans()) else draw(numbers)
    return f"{op} {value}"


@st.composite
def condition(draw: st.DrawFn, dataset: str, params: bool = True) -> str:
    if dataset == "Interactions":
        types = st.sampled_from([*EVENT_TYPES, "*"])
        return f"Interactions.EVENT_TYPE {draw(list_test(types, params))}"
    if draw(st.booleans()):
        return f"Items.PRICE {draw(number_test(params))}"
    field = draw(st.sampled_from(["CATEGORY", "GENDER"]))
    return f"Items.{field} {draw(list_test(text, params))}"


@st.composite
def expression(draw: st.DrawFn, params: bool = True) -> str:
    dataset = draw(st.sampled_from(["Items", "Interactions"]))
    ors = draw(
        st.lists(
            st.lists(condition(dataset, params), min_size=1, max_size=3), min_size=1, max_size=3
        )
    )
    where = " OR ".join(" AND ".join(conj) for conj in ors)
    action = draw(st.sampled_from(["INCLUDE", "EXCLUDE"]))
    out = f"{action} ItemID WHERE {where}"
    if params and draw(st.booleans()):
        user = draw(
            st.sampled_from(
                [
                    "CurrentUser.AGE >= $AGE_N",
                    'CurrentUser.TIER IN ("gold")',
                    "CurrentUser.AGE < 18",
                ]
            )
        )
        out += f" IF {user}"
    return out


@st.composite
def filters(draw: st.DrawFn) -> str:
    return " | ".join(draw(st.lists(expression(), min_size=1, max_size=4)))


values_strategy = st.dictionaries(
    st.sampled_from(
        [f"{n}_{k}" for n in ["A", "B", "C", "PRICE_MAX", "x_1"] for k in "LN"] + ["AGE_N"]
    ),
    st.one_of(st.lists(text, max_size=3), st.lists(numbers, min_size=1, max_size=1)),
)
events_strategy = st.lists(
    st.tuples(st.sampled_from([*CATALOGUE, "unknown"]), st.sampled_from(EVENT_TYPES), st.just(0.0)),
    max_size=20,
)
user_strategy = st.one_of(
    st.none(), st.fixed_dictionaries({"AGE": st.sampled_from(["17", "40", "old"]), "TIER": text})
)


def parsed_or_skip(source: str):
    try:
        return compile_filter(source)
    except FilterError as exc:
        # Only Personalize's field limit can refuse a generated expression.
        assert "distinct fields" in str(exc) or "used both as a list" in str(exc), exc
        assume(False)
        raise


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters(), values_strategy, events_strategy, user_strategy)
def test_valid_expressions_never_crash_the_evaluator(source, values, events, user):
    compiled = parsed_or_skip(source)
    try:
        mask = compiled.mask(FIELDS, values, UserData(events, user))
    except FilterError:
        return  # a missing or bad value: the request's 400, never a crash
    assert mask.dtype == bool and mask.shape == (FIELDS.size,)


@settings(max_examples=30, deadline=None)
@given(st.lists(expression(params=False), min_size=2, max_size=4), events_strategy)
def test_pipe_combines_includes_by_union_and_subtracts_excludes(parts, events):
    compiled = [parsed_or_skip(p) for p in parts]
    whole = parsed_or_skip(" | ".join(parts))
    user = UserData(events, None)
    masks = [c.mask(FIELDS, {}, user) for c in compiled]
    includes = [m for m, c in zip(masks, compiled, strict=True) if c.parsed.expressions[0].include]
    excludes = [
        m for m, c in zip(masks, compiled, strict=True) if not c.parsed.expressions[0].include
    ]
    expected = np.logical_or.reduce(includes) if includes else np.ones(FIELDS.size, bool)
    for m in excludes:  # an EXCLUDE alone keeps what it does not match
        expected &= m
    assert (whole.mask(FIELDS, {}, user) == expected).all()


@settings(max_examples=40, deadline=None)
@given(filters())
def test_lambda_placeholder_scan_agrees_with_the_parser(source):
    compiled = parsed_or_skip(source)
    assert scan_placeholders(source) == compiled.placeholders
