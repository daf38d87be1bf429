"""What a caller sees at the edges: every answer in the `{"error","message"}` envelope (unknown
routes, wrong methods, content types, before or after auth), hostile item data, the byte budget,
and repeated event ids."""

from __future__ import annotations

import json

import pytest

from tests.conftest import AUTH
from tests.functional.support import assert_error, get, items_of, post, purchases

ROUTES = [
    "/recommendations",
    "/related-items",
    "/rankings",
    "/events",
    "/users",
    "/items",
    "/health",
]


@pytest.mark.parametrize("path", ["/nope", "/recommendation", "/RECOMMENDATIONS", "/%00"])
def test_an_unknown_route_is_a_404_envelope(client, path) -> None:
    assert_error(get(client, path), 404, "not_found")
    assert_error(get(client, path, headers={}), 404, "not_found")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "GET", "POST"])
def test_a_wrong_method_is_a_405_envelope_naming_the_right_one(client, path, method) -> None:
    allowed = "GET" if path in ("/recommendations", "/related-items", "/health") else "POST"
    if method == allowed:
        return
    response = client.http.request(method, path, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    if method != "HEAD":
        assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "image/png"],
)
def test_a_get_with_any_content_type_is_answered_after_auth(client, content_type) -> None:
    path = "/recommendations?user_id=u1&num_results=3"
    response = get(client, path, headers={**AUTH, "content-type": content_type})
    assert len(items_of(response)) == 3
    wrong = get(client, path, headers={"x-api-key": "wrong", "content-type": content_type})
    assert_error(wrong, 401, "unauthorized")  # auth first, never Chalice's 415


def test_a_post_with_a_form_body_is_our_415(client) -> None:
    body = "user_id=u1&item_ids=garden-1"
    response = post(client, "/rankings", body, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("price", ["NaN", "1e999", "-inf"])
def test_a_non_finite_price_is_refused_and_never_rendered(client, price) -> None:
    body = {"items": [{"item_id": "garden-1", "properties": {"PRICE": price}}]}
    message = assert_error(post(client, "/items", body), 400, "invalid_request")
    assert "PRICE" in message
    text = get(client, "/related-items?item_id=garden-2&num_results=50").body.decode()
    assert "NaN" not in text and "Infinity" not in text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_literal_non_finite_number_is_refused(client, literal) -> None:
    raw = b'{"items": [{"item_id": "garden-1", "properties": {"PRICE": ' + literal + b"}}]}"
    message = assert_error(post(client, "/items", raw), 400, "invalid_json")
    assert message.startswith("items[0].properties.PRICE")
    for response in (
        get(client, "/recommendations?user_id=u1&num_results=100"),
        get(client, "/related-items?item_id=garden-2&num_results=100"),
    ):
        json.loads(response.body, parse_constant=pytest.fail)


def test_an_id_property_never_replaces_the_id(client) -> None:
    body = {"items": [{"item_id": "garden-1", "properties": {"ID": "toys-1", "Id": "x"}}]}
    assert post(client, "/items", body).status_code == 202
    response = post(client, "/rankings", {"user_id": "u1", "item_ids": ["garden-1"]})
    assert [item["id"] for item in items_of(response)] == ["garden-1"]


def test_a_javascript_url_is_never_rendered(client) -> None:
    props = {"URL": "javascript:alert(document.cookie)", "IMAGE": "data:image/png;base64,AAAA"}
    assert post(client, "/items", {"items": [{"item_id": "garden-1", "properties": props}]})
    (item,) = items_of(post(client, "/rankings", {"user_id": "u1", "item_ids": ["garden-1"]}))
    assert item["url"].startswith("https://") and item["image"].startswith("https://")


def test_large_item_properties_stay_within_the_byte_budget(client) -> None:
    for start in range(0, 120, 10):  # every item of the shop gets 30 KB of properties
        batch = [
            {
                "item_id": f"{cat}-{n}",
                "properties": {"DESCRIPTION": "d" * 15_000, "SPEC": "s" * 14_000},
            }
            for cat in ("garden", "kitchen", "toys")
            for n in range(start // 3, start // 3 + 4)
        ][:10]
        assert post(client, "/items", {"items": batch}).status_code == 202
    for path in (
        "/recommendations?user_id=u1&num_results=100",
        "/related-items?item_id=garden-1&num_results=100",
    ):
        response = get(client, path)
        assert len(response.body) <= 100_000
        items = items_of(response)
        assert len(items) >= 25
        assert all({"id", "url", "name", "price", "image"} <= set(item) for item in items)
        assert response.headers["X-Response-Trimmed"] in ("fields", "names", "items")


def test_the_budget_is_configurable(client, monkeypatch) -> None:
    monkeypatch.setenv("RECS_MAX_RESPONSE_BYTES", "2000")
    response = get(client, "/recommendations?user_id=u1&num_results=100")
    assert len(response.body) <= 2000
    assert response.headers["X-Response-Trimmed"] == "items"
    assert 0 < len(items_of(response)) < 100


def test_a_repeated_event_id_in_one_request_is_refused(client) -> None:
    events = [
        {"event_type": "view", "item_id": "garden-1", "event_id": "same"},
        {"event_type": "view", "item_id": "garden-2", "event_id": "same"},
    ]
    message = assert_error(post(client, "/events", {"user_id": "r", "events": events}), 400)
    assert "events[1].event_id repeats events[0]" in message


def test_a_retried_request_reports_its_duplicates(client) -> None:
    body = purchases("retry", "garden-1", "garden-2")
    for n, event in enumerate(body["events"]):
        event["event_id"] = f"retry-{n}"
    assert json.loads(post(client, "/events", body).body) == {"accepted": 2}
    body["events"].append({"event_type": "view", "item_id": "toys-1", "event_id": "retry-9"})
    assert json.loads(post(client, "/events", body).body) == {"accepted": 1, "duplicates": 2}


def test_an_unknown_deep_path_is_a_404_envelope_in_lambda(data_dir) -> None:
    """As API Gateway invokes the Lambda for `/{proxy+}`: the greedy parameter is `proxy`."""
    from app import app

    event = {
        "resource": "/{proxy+}",
        "path": "/api/a/b/c",
        "httpMethod": "GET",
        "headers": {"x-api-key": "dev-local-key"},
        "multiValueHeaders": {"x-api-key": ["dev-local-key"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "a/b/c"},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": "/api/a/b/c",
            "stage": "api",
            "requestId": "r-1",
        },
        "body": None,
        "isBase64Encoded": False,
    }
    reply = app(event, None)
    assert reply["statusCode"] == 404
    assert json.loads(reply["body"]) == {
        "error": "not_found",
        "message": "no such route: see the README's HTTP API",
    }
