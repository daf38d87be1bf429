"""The response byte budget: whatever the items hold, a body stays valid JSON under the budget,
keeps the render-ready fields, and gives up extra fields before items."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api.budget import MAX_NAME, fit
from chalicelib.catalogue import CORE_FIELDS


def _item(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"i{n}", "url": f"https://shop.example/p/{n}", "name": f"Item {n}",
            "price": 9.5, "image": None, **extra}  # fmt: skip


def _body(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def test_a_body_under_the_budget_is_untouched() -> None:
    body = _body([_item(n, colour="red") for n in range(25)])
    assert fit(body, 100_000) == (body, None)


def test_extra_fields_go_first_and_from_every_item_alike() -> None:
    items = [_item(n, description="d" * 3_000, colour="red") for n in range(100)]
    body, trimmed = fit(_body(items), 100_000)
    result = json.loads(body)
    assert trimmed == "fields"
    assert len(body.encode()) <= 100_000
    assert len(result) == 100  # no item lost
    assert all(set(item) == {*CORE_FIELDS, "colour"} for item in result)  # the costly field went


def test_long_names_are_cut_before_items_are_dropped() -> None:
    items = [_item(n, name="n" * 2_000) for n in range(100)]
    body, trimmed = fit(_body(items), 40_000)
    result = json.loads(body)
    assert trimmed == "names"
    assert len(result) == 100
    assert all(len(item["name"]) == MAX_NAME and item["name"].endswith("…") for item in result)


def test_items_are_dropped_from_the_end_as_a_last_resort() -> None:
    items = [_item(n, url="https://shop.example/" + "p" * 1_500) for n in range(100)]
    body, trimmed = fit(_body(items), 20_000)
    result = json.loads(body)
    assert trimmed == "items"
    assert len(body.encode()) <= 20_000
    assert [i["id"] for i in result] == [f"i{n}" for n in range(len(result))]  # the best kept
    assert all(i["url"].endswith("p" * 1_500) for i in result)  # URLs are never cut


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(
        st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=6),
        max_size=40,
    ),
    names=st.lists(st.text(max_size=400), min_size=40, max_size=40),
    budget=st.integers(min_value=1_024, max_value=60_000),
)
def test_any_items_fit_any_budget_as_valid_json(items, names, budget) -> None:
    full = [{**extra, **_item(n, name=names[n])} for n, extra in enumerate(items)]
    body, _ = fit(_body(full), budget)
    result = json.loads(body)
    assert len(body.encode("utf-8")) <= budget
    assert [i["id"] for i in result] == [f"i{n}" for n in range(len(result))]
    assert all(set(CORE_FIELDS) <= set(item) for item in result)
