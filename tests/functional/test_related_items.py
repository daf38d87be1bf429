"""GET /related-items: similar items, the popular fallback, filters and validation."""

from __future__ import annotations

import pytest

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


def test_related_items_known_item_returns_similar_items_without_itself(client):
    response = get(client, "/related-items?item_id=garden-1&num_results=10")
    ids = ids_of(response)
    assert source_of(response) == "personalized"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert 0 < len(ids) <= 10
    assert "garden-1" not in ids
    assert len(set(ids)) == len(ids)
    assert sum(category(i) == "garden" for i in ids) >= len(ids) * 0.7


def test_related_items_are_decorated_like_recommendations(client):
    for item in items_of(get(client, "/related-items?item_id=toys-2&num_results=3")):
        assert set(item) >= {"id", "url", "name", "price", "image"}
        assert item["name"].startswith("Toys thing")


def test_related_items_num_results_omitted_returns_at_most_25(client):
    assert 0 < len(ids_of(get(client, "/related-items?item_id=kitchen-0"))) <= 25


def test_related_items_unknown_item_gets_popular_fallback(client):
    response = get(client, "/related-items?item_id=no-such-item&num_results=5")
    popular = ids_of(get(client, recs_path("nobody", num_results=5)))
    assert source_of(response) == "fallback"
    assert ids_of(response) == popular


def test_related_items_missing_item_id_is_400(client):
    message = assert_error(get(client, "/related-items?num_results=3"), 400, "invalid_request")
    assert "item_id" in message


def test_related_items_empty_item_id_is_400(client):
    assert_error(get(client, "/related-items?item_id="), 400, "invalid_request")


@pytest.mark.parametrize("num_results", ["0", "101", "abc"])
def test_related_items_num_results_out_of_range_is_400(client, num_results):
    path = f"/related-items?item_id=garden-1&num_results={num_results}"
    assert_error(get(client, path), 400, "invalid_request")


def test_related_items_unknown_filter_is_400(client):
    assert_error(get(client, "/related-items?item_id=garden-1&filter=nope"), 400, "unknown_filter")


def test_related_items_exclude_purchased_drops_what_the_user_just_bought(client):
    base = "/related-items?item_id=garden-1&num_results=10&user_id=shopper"
    filtered = base + "&filter=exclude-purchased"
    target = ids_of(get(client, filtered))[0]
    assert post(client, "/events", purchases("shopper", target)).status_code == 202
    assert target not in ids_of(get(client, filtered))
    # Without the filter the item is still related: the filter, not the model, removed it.
    assert target in ids_of(get(client, base))


def test_related_items_without_key_is_401(client):
    assert_error(get(client, "/related-items?item_id=garden-1", headers={}), 401, "unauthorized")
