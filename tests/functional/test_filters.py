"""Filters through the HTTP API on the synthetic shop (items `<category>-<n>` with PRICE
`1.50`..`10.50`, users with COUNTRY, purchase and view events): placeholders from the query
(repeated or comma lists), the three item-list routes, the fallback, the 400s, and the Braze
case of a purchase posted a moment ago."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from tests.functional.support import (
    assert_error,
    category,
    get,
    ids_of,
    items_of,
    post,
    purchases,
    recs_path,
    source_of,
)

FILTERS = {
    "by-category": "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    "not-category": "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    "cheap-unbought": "INCLUDE ItemID WHERE Items.PRICE <= $MAX | "
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
    "no-toys-in-uk": 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("toys") '
    'IF CurrentUser.COUNTRY IN ("UK")',
    "cheaper-alike": "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE "
    "AND Items.CATEGORY IN CurrentItem.CATEGORY",
}


def _config(tmp_path: Path) -> Path:
    base = "\n".join(  # the shipped filters of those names give way to this test's
        line
        for line in (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text().splitlines()
        if line.split(" = ", 1)[0] not in FILTERS
    )
    lines = [f"{name} = '{expr}'" for name, expr in FILTERS.items()]
    path = tmp_path / "recs.toml"
    path.write_text(base.rstrip() + "\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def fclient(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The trained shop served with the default filters plus FILTERS."""
    from app import app

    monkeypatch.setenv("RECS_CONFIG", str(_config(tmp_path)))
    runtime.reset()
    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as c:
        yield c
    runtime.reset()


def _price(item: dict) -> float:
    return float(item["price"])


def test_braze_exclude_purchased_drops_an_item_the_moment_its_purchase_is_posted(fclient):
    path = recs_path("u4", num_results=10, filter="exclude-purchased")
    before = ids_of(get(fclient, path))
    assert len(before) == 10
    bought = before[:2]
    assert post(fclient, "/events", purchases("u4", *bought)).status_code == 202
    after = ids_of(get(fclient, path))
    assert not set(bought) & set(after)
    assert len(after) == 10


@pytest.mark.parametrize(
    "query",
    ["CATEGORY=toys", "CATEGORY=toys,garden", "CATEGORY=toys&CATEGORY=garden"],
)
def test_placeholder_values_come_from_the_query(fclient, query: str):
    wanted = set(query.replace("CATEGORY=", "").replace("&", ",").split(","))
    items = ids_of(
        get(fclient, f"/recommendations?user_id=u1&num_results=30&filter=by-category&{query}")
    )
    assert items
    assert {category(i) for i in items} <= wanted
    if len(wanted) == 2:
        assert {category(i) for i in items} == wanted


def test_numeric_placeholder_and_interactions_combined(fclient):
    post(fclient, "/events", purchases("u2", "toys-1", "toys-2"))
    response = get(fclient, recs_path("u2", num_results=20, filter="cheap-unbought", MAX="3.5"))
    items = items_of(response)
    assert items
    assert all(_price(item) <= 3.5 for item in items)
    assert not {"toys-1", "toys-2"} & {item["id"] for item in items}


def test_exclude_with_placeholder_left_out_is_skipped(fclient):
    plain = ids_of(get(fclient, recs_path("u1", num_results=10)))
    skipped = ids_of(get(fclient, recs_path("u1", num_results=10, filter="not-category")))
    assert skipped == plain
    favourite = category(plain[0])
    without = ids_of(
        get(fclient, recs_path("u1", num_results=10, filter="not-category", CATEGORY=favourite))
    )
    assert without and favourite not in {category(i) for i in without}


def test_if_current_user_applies_to_matching_users_only(fclient):
    post(fclient, "/users", {"users": [{"user_id": "u2", "properties": {"COUNTRY": "UK"}}]})
    post(fclient, "/users", {"users": [{"user_id": "u5", "properties": {"COUNTRY": "FR"}}]})
    # u2 and u5 prefer toys (n % 3 == 2).
    uk = ids_of(get(fclient, recs_path("u2", num_results=25, filter="no-toys-in-uk")))
    fr = ids_of(get(fclient, recs_path("u5", num_results=25, filter="no-toys-in-uk")))
    assert "toys" not in {category(i) for i in uk}
    assert "toys" in {category(i) for i in fr}
    # User metadata posted a moment ago counts at once.
    post(fclient, "/users", {"users": [{"user_id": "u5", "properties": {"COUNTRY": "UK"}}]})
    fr_now_uk = ids_of(get(fclient, recs_path("u5", num_results=25, filter="no-toys-in-uk")))
    assert "toys" not in {category(i) for i in fr_now_uk}


def test_unknown_user_gets_a_filtered_fallback(fclient):
    response = get(
        fclient, recs_path("stranger", num_results=10, filter="by-category", CATEGORY="kitchen")
    )
    assert source_of(response) == "fallback"
    items = ids_of(response)
    assert len(items) == 10 and {category(i) for i in items} == {"kitchen"}


def test_related_items_take_filters_and_values(fclient):
    path = "/related-items?item_id=garden-1&num_results=10&filter=by-category&CATEGORY=kitchen"
    items = ids_of(get(fclient, path))
    assert items and {category(i) for i in items} == {"kitchen"}


def test_related_items_can_be_cheaper_items_of_the_same_category(fclient):
    ranked = post(fclient, "/rankings", {"user_id": "u1", "item_ids": ["garden-7"]})
    [seed] = items_of(ranked)
    path = "/related-items?item_id=garden-7&num_results=10&filter=cheaper-alike"
    items = items_of(get(fclient, path))
    assert items
    assert {category(i["id"]) for i in items} == {"garden"}
    assert all(_price(i) < _price(seed) for i in items)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/recommendations?user_id=u1&filter=cheaper-alike", None),
        (
            "POST",
            "/rankings",
            {"user_id": "u1", "item_ids": ["garden-1"], "filter": "cheaper-alike"},
        ),
    ],
)
def test_a_current_item_filter_is_for_related_items_only(fclient, method, path, body):
    response = get(fclient, path) if method == "GET" else post(fclient, path, body)
    assert "/related-items" in assert_error(response, 400, "invalid_filter")


def test_rankings_take_filters_with_list_or_comma_values(fclient):
    given = ["garden-1", "toys-2", "kitchen-3", "toys-4"]
    for values in ({"CATEGORY": "toys,kitchen"}, {"CATEGORY": ["toys", "kitchen"]}):
        body = {
            "user_id": "u1",
            "item_ids": given,
            "filter": "by-category",
            "filter_values": values,
        }
        ranked = ids_of(post(fclient, "/rankings", body))
        assert sorted(ranked) == ["kitchen-3", "toys-2", "toys-4"]
    body = {"user_id": "u1", "item_ids": given, "filter": "by-category"}
    assert "$CATEGORY" in assert_error(
        post(fclient, "/rankings", body), 400, "missing_filter_value"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/recommendations?user_id=u1&filter=by-category",
        "/recommendations?user_id=u1&filter=by-category&CATEGORY=",
        "/recommendations?user_id=stranger&filter=by-category&category=toys",
        "/related-items?item_id=garden-1&filter=by-category",
    ],
)
def test_missing_placeholder_is_400_naming_it(fclient, path: str):
    message = assert_error(get(fclient, path), 400, "missing_filter_value")
    assert "$CATEGORY: give it as the query parameter CATEGORY" in message
    assert "--filter-value" not in message  # an HTTP caller has no options


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("MAX=cheap", "$MAX must be a number"),
        ("MAX=1,2", "give one value"),
        ("MAX=" + ",".join(["1"] * 26), "at most 25 values"),
    ],
)
def test_bad_placeholder_values_are_400(fclient, query: str, words: str):
    message = assert_error(
        get(fclient, f"/recommendations?user_id=u1&filter=cheap-unbought&{query}"),
        400,
        "invalid_filter",
    )
    assert words in message


def test_unknown_filter_is_400_naming_it_on_every_route(fclient):
    for response in (
        get(fclient, recs_path("u1", filter="nope")),
        get(fclient, "/related-items?item_id=garden-1&filter=nope"),
        post(fclient, "/rankings", {"user_id": "u1", "item_ids": ["toys-1"], "filter": "nope"}),
    ):
        assert "'nope'" in assert_error(response, 400, "unknown_filter")


@pytest.mark.parametrize(
    "value",
    [
        'toys") | INCLUDE ItemID WHERE Items.CATEGORY IN ("garden',
        "toys' OR 1=1 --",
        "$CATEGORY",
        "<script>alert(1)</script>",
        "*",
    ],
)
def test_hostile_values_are_data(fclient, value: str):
    path = recs_path("u1", num_results=10, filter="by-category", CATEGORY=value)
    response = get(fclient, path)
    assert ids_of(response) == []  # no category has that name: nothing matches, nothing breaks


def test_a_bad_filter_in_the_configuration_is_refused_when_loaded(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from chalicelib.config import ConfigError

    base = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(base + "\nbroken = 'INCLUDE ItemID WHERE Items.PRICE LIKE 3'\n")
    monkeypatch.setenv("RECS_CONFIG", str(path))
    runtime.reset()
    with pytest.raises(ConfigError) as info:
        runtime.current()
    message = str(info.value)
    assert "filter 'broken'" in message and "column 34" in message
    assert "expected IN or NOT IN" in message
    runtime.reset()


def test_cli_recommend_takes_filter_values(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    import json

    from chalicelib import cli

    monkeypatch.setenv("RECS_CONFIG", str(_config(tmp_path)))
    runtime.reset()
    try:
        args = ["recommend", "u1", "--num-results", "5", "--filter", "by-category"]
        assert cli.main(args) == 2
        assert capsys.readouterr().err == (
            "recommend: the filter needs a value for $CATEGORY: give it as --filter-value "
            "CATEGORY=VALUE (several values: repeat it or separate them with commas)\n"
        )  # the option the command takes, not the API's query parameter
        assert cli.main([*args, "--filter-value", "CATEGORY=toys,garden"]) == 0
        items = json.loads(capsys.readouterr().out)["items"]
        assert items and {category(i["id"]) for i in items} <= {"toys", "garden"}
    finally:
        runtime.reset()
