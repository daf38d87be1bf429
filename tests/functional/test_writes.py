"""POST /events, /users and /items: 202 on success, whole-batch validation, body limits."""

from __future__ import annotations

import json

import pytest

from chalicelib.providers.local.store import LocalStore
from chalicelib.seam import runtime
from tests.functional.support import (
    assert_error,
    get,
    ids_of,
    items_of,
    post,
    purchases,
    recs_path,
    source_of,
)


def _event(**fields: object) -> dict[str, object]:
    return {"event_type": "purchase", "item_id": "garden-1", **fields}


def _still_unknown(client, user_id: str) -> bool:
    return source_of(get(client, recs_path(user_id, num_results=3))) == "fallback"


# -- POST /events ------------------------------------------------------------------------------


def test_events_valid_batch_is_202_with_count(client):
    response = post(client, "/events", purchases("e1", "garden-1", "garden-2", "toys-3"))
    assert response.status_code == 202
    assert json.loads(response.body) == {"accepted": 3}


def test_events_ten_events_are_accepted(client):
    items = [f"kitchen-{n}" for n in range(10)]
    response = post(client, "/events", purchases("ten", *items))
    assert json.loads(response.body) == {"accepted": 10}


def test_events_eleven_events_is_400_and_nothing_stored(client):
    items = [f"kitchen-{n}" for n in range(11)]
    message = assert_error(
        post(client, "/events", purchases("eleven", *items)), 400, "invalid_request"
    )
    assert "events" in message
    assert _still_unknown(client, "eleven")


def test_events_empty_list_is_400(client):
    assert_error(post(client, "/events", {"user_id": "e", "events": []}), 400)


def test_events_one_bad_event_rejects_the_whole_batch(client):
    body = {"user_id": "partial", "events": [_event(), _event(item_id="garden-2"), _event()]}
    del body["events"][2]["item_id"]
    message = assert_error(post(client, "/events", body), 400, "invalid_request")
    assert "events[2].item_id" in message
    assert _still_unknown(client, "partial")


def test_events_missing_item_id_names_the_event(client):
    body = {"user_id": "e", "events": [{"event_type": "purchase"}]}
    assert "events[0].item_id" in assert_error(post(client, "/events", body), 400)


def test_events_missing_user_id_is_400(client):
    body = {"events": [_event()]}
    assert "user_id" in assert_error(post(client, "/events", body), 400)


@pytest.mark.parametrize("timestamp", ["not a time", True, 1e15, -5, "2024-13-45T99:00:00"])
def test_events_bad_timestamp_is_400(client, timestamp):
    body = {"user_id": "ts", "events": [_event(timestamp=timestamp)]}
    message = assert_error(post(client, "/events", body), 400, "invalid_request")
    assert "events[0].timestamp" in message


@pytest.mark.parametrize(
    "timestamp", ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00+02:00", "2024-05-01", 1714557600]
)
def test_events_iso_or_epoch_timestamp_is_accepted(client, timestamp):
    body = {"user_id": "ts-ok", "events": [_event(timestamp=timestamp)]}
    assert post(client, "/events", body).status_code == 202


def test_events_nan_event_value_is_400(client):
    body = b'{"user_id": "n", "events": [{"event_type": "v", "item_id": "x", "event_value": NaN}]}'
    assert "event_value" in assert_error(post(client, "/events", body), 400)


def test_events_all_optional_fields_are_accepted(client):
    event = _event(
        event_value=2.5,
        event_id="evt-1",
        properties={"discount": "yes"},
        recommendation_id="rec-1",
        impression=["garden-1", "garden-2"],
    )
    response = post(client, "/events", {"user_id": "full", "session_id": "s", "events": [event]})
    assert response.status_code == 202


def test_events_properties_of_1024_characters_are_accepted(client):
    properties = {"k": "x" * 1016}  # {"k":"…"} is 1024 characters
    body = {"user_id": "p", "events": [_event(properties=properties)]}
    assert post(client, "/events", body).status_code == 202


def test_events_properties_over_1024_characters_is_400(client):
    properties = {"k": "x" * 1017}
    body = {"user_id": "p", "events": [_event(properties=properties)]}
    assert "events[0].properties" in assert_error(post(client, "/events", body), 400)


@pytest.mark.parametrize("key", ["userId", "TIMESTAMP", "eventType"])
def test_events_reserved_property_key_is_400(client, key):
    body = {"user_id": "p", "events": [_event(properties={key: "x"})]}
    assert key in assert_error(post(client, "/events", body), 400, "invalid_request")


def test_events_empty_properties_is_400(client):
    body = {"user_id": "p", "events": [_event(properties={})]}
    assert_error(post(client, "/events", body), 400, "invalid_request")


def test_events_malformed_json_is_400_invalid_json(client):
    assert_error(post(client, "/events", b'{"user_id": "x", '), 400, "invalid_json")


def test_events_deeply_nested_json_is_400_invalid_json(client):
    assert_error(post(client, "/events", b"[" * 100_000), 400, "invalid_json")


def test_events_invalid_utf8_is_400_invalid_json(client):
    assert_error(post(client, "/events", b'{"user_id": "\xff"}'), 400, "invalid_json")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_events_non_object_json_is_400(client, body):
    assert_error(post(client, "/events", body), 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_events_wrong_content_type_is_415(client, content_type):
    body = purchases("ct", "garden-1")
    response = post(client, "/events", body, content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert _still_unknown(client, "ct")


def test_events_json_with_charset_is_accepted(client):
    body = purchases("charset", "garden-1")
    response = post(client, "/events", body, content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def test_events_body_over_configured_limit_is_413(client, monkeypatch):
    monkeypatch.setenv("RECS_MAX_BODY_BYTES", "2048")
    runtime.reset()
    small = {"user_id": "big", "events": [_event(properties={"k": "x" * 900})]}
    assert post(client, "/events", small).status_code == 202
    big = {"user_id": "big2", "events": [_event(properties={"k": "x" * 900})] * 3}
    assert len(json.dumps(big)) > 2048
    assert_error(post(client, "/events", big), 413, "payload_too_large")
    assert _still_unknown(client, "big2")


def test_events_body_over_default_limit_is_413(client):
    body = {"user_id": "huge", "events": [_event()], "pad": "x" * (512 * 1024)}
    assert_error(post(client, "/events", body), 413, "payload_too_large")


def test_events_duplicate_event_id_is_accepted_but_stored_once(client, data_dir):
    body = {"user_id": "dup", "events": [_event(event_id="same-id")]}
    assert post(client, "/events", body).status_code == 202
    assert post(client, "/events", body).status_code == 202
    assert len(LocalStore(data_dir).user_events("dup")) == 1


def test_events_without_key_is_401_and_nothing_stored(client):
    response = post(client, "/events", purchases("anon", "garden-1"), headers={})
    assert_error(response, 401, "unauthorized")
    assert _still_unknown(client, "anon")


# -- POST /users -------------------------------------------------------------------------------


def test_users_valid_batch_is_202_and_stored(client, data_dir):
    body = {"users": [{"user_id": "nu1", "properties": {"country": "FR"}}]}
    response = post(client, "/users", body)
    assert response.status_code == 202
    assert json.loads(response.body) == {"accepted": 1}
    assert LocalStore(data_dir).user("nu1") == {"country": "FR"}


def test_users_ten_users_are_accepted(client):
    body = {"users": [{"user_id": f"nu{n}", "properties": {"a": n}} for n in range(10)]}
    assert json.loads(post(client, "/users", body).body) == {"accepted": 10}


def test_users_eleven_users_is_400(client):
    body = {"users": [{"user_id": f"nu{n}", "properties": {"a": n}} for n in range(11)]}
    assert "users" in assert_error(post(client, "/users", body), 400, "invalid_request")


def test_users_empty_properties_is_400(client):
    body = {"users": [{"user_id": "nu1", "properties": {}}]}
    assert "users[0].properties" in assert_error(post(client, "/users", body), 400)


def test_users_missing_user_id_is_400(client):
    body = {"users": [{"properties": {"a": 1}}]}
    assert "users[0].user_id" in assert_error(post(client, "/users", body), 400)


def test_users_wrong_content_type_is_415(client):
    body = {"users": [{"user_id": "nu1", "properties": {"a": 1}}]}
    assert_error(post(client, "/users", body, content_type="text/plain"), 415)


# -- POST /items -------------------------------------------------------------------------------


def test_items_update_renames_and_reprices_in_rankings_at_once(client):
    body = {
        "items": [{"item_id": "garden-3", "properties": {"NAME": "Golden rake", "PRICE": "19.99"}}]
    }
    response = post(client, "/items", body)
    assert response.status_code == 202
    assert json.loads(response.body) == {"accepted": 1}
    ranked = items_of(post(client, "/rankings", {"user_id": "u1", "item_ids": ["garden-3"]}))
    assert ranked[0]["name"] == "Golden rake"
    assert ranked[0]["price"] == 19.99
    # a whole record, as PutItems replaces it on Personalize: a field left out is gone
    assert "category" not in ranked[0]


def test_items_update_shows_in_related_items_at_once(client):
    path = "/related-items?item_id=kitchen-1&num_results=5"
    target = ids_of(get(client, path))[0]
    body = {"items": [{"item_id": target, "properties": {"name": "Renamed", "price": 3}}]}
    assert post(client, "/items", body).status_code == 202
    shown = {item["id"]: item for item in items_of(get(client, path))}
    assert shown[target]["name"] == "Renamed"
    assert shown[target]["price"] == 3


def test_items_new_item_becomes_rankable(client):
    body = {"user_id": "u1", "item_ids": ["garden-999", "garden-1"]}
    assert ids_of(post(client, "/rankings", body)) == ["garden-1"]
    new = {
        "item_id": "garden-999",
        "properties": {"name": "New hose", "url": "https://x.example/h"},
    }
    assert post(client, "/items", {"items": [new]}).status_code == 202
    ranked = {item["id"]: item for item in items_of(post(client, "/rankings", body))}
    assert set(ranked) == {"garden-999", "garden-1"}
    assert ranked["garden-999"]["name"] == "New hose"
    assert ranked["garden-999"]["url"] == "https://x.example/h"


def test_items_eleven_items_is_400(client):
    body = {"items": [{"item_id": f"i{n}", "properties": {"a": n}} for n in range(11)]}
    assert "items" in assert_error(post(client, "/items", body), 400, "invalid_request")


def test_items_empty_properties_is_400(client):
    body = {"items": [{"item_id": "garden-1", "properties": {}}]}
    assert "items[0].properties" in assert_error(post(client, "/items", body), 400)


def test_items_missing_properties_is_400(client):
    assert_error(post(client, "/items", {"items": [{"item_id": "garden-1"}]}), 400)


def test_items_wrong_content_type_is_415(client):
    body = {"items": [{"item_id": "garden-1", "properties": {"a": 1}}]}
    response = post(client, "/items", body, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_items_without_key_is_401(client):
    body = {"items": [{"item_id": "garden-1", "properties": {"name": "Hacked"}}]}
    assert_error(post(client, "/items", body, headers={}), 401)
    ranked = items_of(post(client, "/rankings", {"user_id": "u1", "item_ids": ["garden-1"]}))
    assert ranked[0]["name"] == "Garden thing 1"
