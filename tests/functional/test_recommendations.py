"""GET /recommendations: personalized lists, the fallback, real-time events and validation."""

from __future__ import annotations

import json

import pytest

from chalicelib.providers.local.serving import LocalServing
from tests.conftest import AUTH
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


def test_recommendations_known_user_is_personalized_and_cacheable(client):
    response = get(client, recs_path("u2", num_results=10))
    items = items_of(response)
    assert source_of(response) == "personalized"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert len(items) == 10
    for item in items:
        assert item["url"] == f"https://shop.example/p/{item['id']}"
        assert item["image"] == f"https://shop.example/images/{item['id']}.jpg"
        assert item["name"]
        assert isinstance(item["price"], float)
    # u2 prefers toys (CATEGORIES[2 % 3]).
    assert sum(category(i["id"]) == "toys" for i in items) >= 7


def test_recommendations_num_results_omitted_returns_25(client):
    assert len(ids_of(get(client, recs_path("u1")))) == 25


@pytest.mark.parametrize("num_results", [1, 100])
def test_recommendations_num_results_at_bounds_returns_that_many(client, num_results):
    ids = ids_of(get(client, recs_path("u1", num_results=num_results)))
    assert len(ids) == num_results
    assert len(set(ids)) == num_results


@pytest.mark.parametrize("num_results", ["0", "101", "abc", "-1", ""])
def test_recommendations_num_results_out_of_range_is_400(client, num_results):
    message = assert_error(
        get(client, recs_path("u1", num_results=num_results)), 400, "invalid_request"
    )
    assert "num_results" in message


def test_recommendations_unknown_user_gets_popular_fallback(client):
    response = get(client, recs_path("nobody-at-all", num_results=5))
    ids = ids_of(response)
    assert response.status_code == 200
    assert source_of(response) == "fallback"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert len(ids) == 5
    # Popular items are the same for every unknown user.
    assert ids_of(get(client, recs_path("someone-else", num_results=5))) == ids


def test_recommendations_new_user_after_purchases_is_personalized_without_retraining(client):
    version = json.loads(client.http.get("/health").body)["model_version"]
    assert source_of(get(client, recs_path("newbie"))) == "fallback"

    response = post(client, "/events", purchases("newbie", "toys-0", "toys-1", "toys-2"))
    assert response.status_code == 202

    response = get(client, recs_path("newbie", num_results=10))
    ids = ids_of(response)
    assert source_of(response) == "personalized"
    assert sum(category(i) == "toys" for i in ids) >= 7
    # recs.toml allows repeats (exclude_seen = false); the shipped filter leaves purchases out.
    response = get(client, recs_path("newbie", num_results=10, filter="exclude-purchased"))
    assert source_of(response) == "personalized"
    assert not {"toys-0", "toys-1", "toys-2"} & set(ids_of(response))
    assert json.loads(client.http.get("/health").body)["model_version"] == version


def test_recommendations_follow_the_category_bought(client):
    post(client, "/events", purchases("cook", "kitchen-0", "kitchen-1", "kitchen-2"))
    post(client, "/events", purchases("gardener", "garden-0", "garden-1", "garden-2"))
    cook = ids_of(get(client, recs_path("cook", num_results=10)))
    gardener = ids_of(get(client, recs_path("gardener", num_results=10)))
    assert sum(category(i) == "kitchen" for i in cook) >= 7
    assert sum(category(i) == "garden" for i in gardener) >= 7


def test_recommendations_exclude_purchased_drops_item_once_purchase_posted(client):
    path = recs_path("u1", num_results=10, filter="exclude-purchased")
    first = ids_of(get(client, path))
    target = first[0]
    assert post(client, "/events", purchases("u1", target)).status_code == 202
    after = ids_of(get(client, path))
    assert target not in after
    assert len(after) == 10


def test_recommendations_filter_with_unrelated_query_params_is_applied(client):
    response = get(client, recs_path("u1", num_results=5, filter="exclude-purchased", foo="bar"))
    assert len(ids_of(response)) == 5


def test_recommendations_unknown_filter_is_400(client):
    message = assert_error(
        get(client, recs_path("u1", filter="no-such-filter")), 400, "unknown_filter"
    )
    assert "no-such-filter" in message


def test_recommendations_unknown_filter_for_unknown_user_is_400(client):
    assert_error(get(client, recs_path("nobody", filter="no-such-filter")), 400, "unknown_filter")


def test_recommendations_missing_user_id_is_400(client):
    message = assert_error(get(client, "/recommendations?num_results=3"), 400, "invalid_request")
    assert "user_id" in message


def test_recommendations_empty_user_id_is_400(client):
    assert_error(get(client, "/recommendations?user_id="), 400, "invalid_request")


def test_recommendations_user_id_of_257_characters_is_400(client):
    assert_error(get(client, recs_path("u" * 257)), 400, "invalid_request")


def test_recommendations_user_id_of_256_characters_is_accepted(client):
    response = get(client, recs_path("u" * 256, num_results=3))
    assert len(ids_of(response)) == 3
    assert source_of(response) == "fallback"


@pytest.mark.parametrize("user_id", ["Zoë", "用户-42", "emoji-😀", "a+b&c=d e"])
def test_recommendations_unicode_user_id_works_end_to_end(client, user_id):
    assert source_of(get(client, recs_path(user_id, num_results=3))) == "fallback"
    assert post(client, "/events", purchases(user_id, "garden-0", "garden-1")).status_code == 202
    response = get(client, recs_path(user_id, num_results=5))
    assert source_of(response) == "personalized"
    assert len(ids_of(response)) == 5


def test_recommendations_provider_failure_serves_fallback_not_5xx(client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("backend down")

    monkeypatch.setattr(LocalServing, "recommend", broken)
    response = get(client, recs_path("u1", num_results=4))
    assert response.status_code == 200
    assert source_of(response) == "fallback"
    assert len(ids_of(response)) == 4


def test_recommendations_without_key_is_401_even_for_valid_query(client):
    assert_error(get(client, recs_path("u1"), headers={}), 401, "unauthorized")


# -- empty store: no data, no model -----------------------------------------------------------


def test_recommendations_empty_store_returns_fallback_array(empty_client):
    response = get(empty_client, recs_path("u1"))
    assert response.status_code == 200
    assert source_of(response) == "fallback"
    assert isinstance(items_of(response), list)


def test_recommendations_empty_store_with_filter_returns_fallback_array(empty_client):
    response = get(empty_client, recs_path("u1", filter="exclude-purchased"))
    assert source_of(response) == "fallback"
    assert isinstance(items_of(response), list)


def test_recommendations_empty_store_after_events_still_answers_fallback(empty_client):
    assert post(empty_client, "/events", purchases("first", "thing-1")).status_code == 202
    response = get(empty_client, recs_path("first", num_results=5))
    assert source_of(response) == "fallback"
    for item in items_of(response):
        assert item["url"].startswith("https://shop.example/p/")


def test_related_items_empty_store_returns_fallback_array(empty_client):
    response = get(empty_client, "/related-items?item_id=anything")
    assert source_of(response) == "fallback"
    assert isinstance(items_of(response), list)


def test_rankings_empty_store_returns_given_items_as_fallback(empty_client):
    body = {"user_id": "u1", "item_ids": ["a-1", "b-2"]}
    response = post(empty_client, "/rankings", body)
    assert source_of(response) == "fallback"
    assert sorted(ids_of(response)) == ["a-1", "b-2"]


def test_health_empty_store_has_no_model_version(empty_client):
    response = empty_client.http.get("/health")
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["model_version"] is None


def test_recommendations_response_never_contains_traceback(client):
    for path in (recs_path("u1"), recs_path("x" * 300), "/recommendations?user_id=%ff%fe"):
        assert b"Traceback" not in client.http.get(path, headers=AUTH).body
