"""`filterValues` as Personalize wants them, and the request-side value rules, without lark or
numpy (the module runs on Lambda)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chalicelib.filters import FilterError, MissingFilterValueError
from chalicelib.filters.values import encode_filter_values, uses_current_item, values_from_query
from chalicelib.settings import PROJECT_ROOT

MIXED = (
    "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) AND Items.PRICE <= $MAX | "
    "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENTS) IF CurrentUser.AGE > $AGE"
)


def test_strings_are_quoted_and_comma_joined_numbers_are_not() -> None:
    encoded = encode_filter_values(
        MIXED, {"CATEGORY": ["shoes", "bags"], "MAX": ["9.99"], "EVENTS": ["click"], "AGE": ["18"]}
    )
    assert encoded == {
        "CATEGORY": '"shoes","bags"',
        "MAX": "9.99",
        "EVENTS": '"click"',
        "AGE": "18",
    }


def test_exclude_placeholders_may_be_left_out_include_ones_may_not() -> None:
    assert encode_filter_values(MIXED, {"CATEGORY": ["a"], "MAX": ["1"]}) == {
        "CATEGORY": '"a"',
        "MAX": "1",
    }
    with pytest.raises(MissingFilterValueError, match=r"\$MAX"):
        encode_filter_values(MIXED, {"CATEGORY": ["a"]})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"MAX": ["1e3"]}, "must be a number"),
        ({"MAX": ["1", "2"]}, "give one value"),
        ({"CATEGORY": [str(n) for n in range(26)]}, "at most 25 values"),
        ({"CATEGORY": ['a"b']}, "double quote"),
        ({"CATEGORY": ["x" * 999]}, "at most 1000"),
    ],
)
def test_values_personalize_would_refuse_are_refused_first(values: dict, message: str) -> None:
    given = {"CATEGORY": ["a"], "MAX": ["1"], **values}
    with pytest.raises(FilterError, match=message):
        encode_filter_values(MIXED, given)


def test_query_values_split_commas_and_repeats_and_skip_reserved_names() -> None:
    query = {"user_id": ["u1"], "filter": ["f"], "CATEGORY": ["a,b", " c "], "EMPTY": [""]}
    assert values_from_query(query, {"user_id", "filter"}) == {
        "CATEGORY": ["a", "b", "c"],
        "EMPTY": [],
    }


def test_the_module_imports_neither_lark_nor_numpy() -> None:
    code = (
        "import sys, chalicelib.filters.values; "
        "print(sorted(m for m in ('lark', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_current_item_is_found_only_as_a_word_of_the_expression() -> None:
    assert uses_current_item("INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE")
    assert not uses_current_item('INCLUDE ItemID WHERE Items.NAME IN ("CurrentItem.PRICE")')
    assert not uses_current_item("INCLUDE ItemID WHERE Items.CurrentItem IN ($X)")
