"""Cross-route guarantees: hostile input never gives a 5xx or a traceback, errors are always the
JSON envelope, and success bodies of item routes are JSON arrays."""

from __future__ import annotations

import json

import pytest

from tests.functional.support import assert_error, get, post

GARBAGE_BODIES = [
    b"",
    b"{",
    b"[" * 50_000,
    b'{"a": ' * 5_000,
    b"\x00\x01\x02\xff",
    b'{"user_id": 1' + b"1" * 5_000 + b"}",
    b'{"user_id": "x", "events": "not a list"}',
    b'{"user_id": null, "item_ids": null, "users": 3, "items": {}}',
    b'{"user_id": "x", "events": [{"event_type": "v", "item_id": "y", "timestamp": Infinity}]}',
]
WRITE_ROUTES = ["/rankings", "/events", "/users", "/items"]
GARBAGE_QUERIES = [
    "/recommendations?user_id=%ff%fe",
    "/recommendations?user_id=u1&num_results=1e2",
    "/recommendations?user_id=u1&num_results=99999999999999999999999",
    "/recommendations?user_id=u1&user_id=&num_results=3",
    "/recommendations?user_id=u1&filter=",
    "/recommendations?user_id=%00",
    "/related-items?item_id=%00&user_id=" + "x" * 300,
    "/related-items?item_id={id}&filter=exclude-purchased&user_id=new",
]


@pytest.mark.parametrize("route", WRITE_ROUTES)
@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=range(len(GARBAGE_BODIES)))
def test_api_garbage_body_is_a_4xx_json_error(client, route, body):
    response = post(client, route, body)
    assert 400 <= response.status_code < 500
    assert b"Traceback" not in response.body
    assert_error(response, response.status_code)


@pytest.mark.parametrize("path", GARBAGE_QUERIES)
def test_api_odd_query_never_5xx_or_traceback(client, path):
    response = get(client, path)
    assert response.status_code in (200, 400)
    assert b"Traceback" not in response.body
    if response.status_code == 200:
        assert isinstance(json.loads(response.body), list)
    else:
        assert_error(response, 400)


def test_api_error_responses_are_not_cacheable(client):
    response = get(client, "/recommendations?user_id=")
    assert_error(response, 400)
    assert response.headers["Cache-Control"] == "no-store"


def test_api_item_lists_stay_small(client):
    response = get(client, "/recommendations?user_id=u1&num_results=100")
    assert len(response.body) < 100_000  # far below Braze's 1 MB limit
