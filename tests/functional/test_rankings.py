"""POST /rankings: the given items, ranked for the user; unknown ids dropped; limits."""

from __future__ import annotations

from chalicelib.providers.local.serving import LocalServing
from tests.functional.support import (
    assert_error,
    category,
    get,
    ids_of,
    post,
    recs_path,
    source_of,
)

MIXED = ["garden-5", "toys-5", "kitchen-5", "garden-6", "toys-6", "kitchen-6"]


def test_rankings_known_user_ranks_preferred_category_first(client):
    response = post(client, "/rankings", {"user_id": "u1", "item_ids": MIXED})
    ids = ids_of(response)
    assert source_of(response) == "personalized"
    assert response.headers["Cache-Control"] == "no-store"
    assert sorted(ids) == sorted(MIXED)
    # u1 prefers kitchen.
    assert {category(i) for i in ids[:2]} == {"kitchen"}


def test_rankings_rank_differs_by_user_taste(client):
    toys_fan = ids_of(post(client, "/rankings", {"user_id": "u2", "item_ids": MIXED}))
    assert {category(i) for i in toys_fan[:2]} == {"toys"}


def test_rankings_unknown_ids_are_dropped(client):
    body = {"user_id": "u1", "item_ids": ["nope-1", "kitchen-5", "nope-2", "garden-5"]}
    assert sorted(ids_of(post(client, "/rankings", body))) == ["garden-5", "kitchen-5"]


def test_rankings_only_unknown_ids_returns_empty_list(client):
    for user in ("u1", "nobody"):
        body = {"user_id": user, "item_ids": ["nope-1", "nope-2"]}
        assert ids_of(post(client, "/rankings", body)) == []


def test_rankings_unknown_user_gets_fallback_in_popularity_order(client):
    popular = ids_of(get(client, recs_path("nobody", num_results=4)))
    given = [popular[3], "nope-9", popular[1], popular[0], popular[2]]
    response = post(client, "/rankings", {"user_id": "stranger", "item_ids": given})
    assert source_of(response) == "fallback"
    assert ids_of(response) == popular


def test_rankings_provider_failure_returns_given_items_not_popular_ones(client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("backend down")

    monkeypatch.setattr(LocalServing, "rank", broken)
    given = ["kitchen-30", "nope-1", "garden-31"]
    response = post(client, "/rankings", {"user_id": "u1", "item_ids": given})
    assert source_of(response) == "fallback"
    # The one fallback policy: the given items the catalogue has, most popular first.
    assert sorted(ids_of(response)) == ["garden-31", "kitchen-30"]


def test_rankings_500_ids_are_accepted(client):
    item_ids = ["kitchen-1", *(f"nope-{n}" for n in range(499))]
    response = post(client, "/rankings", {"user_id": "u1", "item_ids": item_ids})
    assert ids_of(response) == ["kitchen-1"]


def test_rankings_more_than_500_ids_is_400(client):
    item_ids = [f"garden-{n % 40}" for n in range(501)]
    message = assert_error(
        post(client, "/rankings", {"user_id": "u1", "item_ids": item_ids}), 400, "invalid_request"
    )
    assert "item_ids" in message


def test_rankings_empty_item_ids_is_400(client):
    assert_error(post(client, "/rankings", {"user_id": "u1", "item_ids": []}), 400)


def test_rankings_missing_user_id_is_400(client):
    message = assert_error(post(client, "/rankings", {"item_ids": ["garden-1"]}), 400)
    assert "user_id" in message


def test_rankings_non_string_item_id_is_400(client):
    assert_error(post(client, "/rankings", {"user_id": "u1", "item_ids": [None]}), 400)


def test_rankings_unknown_field_is_400(client):
    body = {"user_id": "u1", "item_ids": ["garden-1"], "colour": "red"}
    assert_error(post(client, "/rankings", body), 400, "invalid_request")


def test_rankings_unknown_filter_is_400(client):
    body = {"user_id": "u1", "item_ids": ["garden-1"], "filter": "nope"}
    assert_error(post(client, "/rankings", body), 400, "unknown_filter")


def test_rankings_exclude_purchased_filter_drops_bought_item(client):
    body = {"user_id": "u1", "item_ids": MIXED, "filter": "exclude-purchased"}
    assert "toys-6" in ids_of(post(client, "/rankings", body))
    post(
        client,
        "/events",
        {"user_id": "u1", "events": [{"event_type": "purchase", "item_id": "toys-6"}]},
    )
    assert "toys-6" not in ids_of(post(client, "/rankings", body))


def test_rankings_malformed_json_is_400(client):
    assert_error(post(client, "/rankings", b'{"user_id": '), 400, "invalid_json")


def test_rankings_wrong_content_type_is_415(client):
    body = {"user_id": "u1", "item_ids": ["garden-1"]}
    assert_error(post(client, "/rankings", body, content_type="text/plain"), 415)


def test_rankings_without_key_is_401(client):
    body = {"user_id": "u1", "item_ids": ["garden-1"]}
    assert_error(post(client, "/rankings", body, headers={}), 401, "unauthorized")
