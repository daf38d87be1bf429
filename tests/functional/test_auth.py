"""API-key auth on every route but /health: x-api-key, HTTP Basic, rotation, failing closed."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import AUTH, DEV_KEY
from tests.functional.support import assert_error, get, post, recs_path

OK_PATH = recs_path("u1", num_results=2)
PROTECTED = [
    ("GET", OK_PATH, None),
    ("GET", "/related-items?item_id=garden-1", None),
    ("POST", "/rankings", {"user_id": "u1", "item_ids": ["garden-1"]}),
    ("POST", "/events", {"user_id": "a", "events": [{"event_type": "v", "item_id": "garden-1"}]}),
    ("POST", "/users", {"users": [{"user_id": "a", "properties": {"x": 1}}]}),
    ("POST", "/items", {"items": [{"item_id": "garden-1", "properties": {"x": 1}}]}),
]


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def _call(client, method, path, body, headers):
    if method == "GET":
        return get(client, path, headers=headers)
    return post(client, path, body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_auth_no_key_is_401_on_every_protected_route(client, method, path, body):
    assert_error(_call(client, method, path, body, {}), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_auth_wrong_key_is_401_on_every_protected_route(client, method, path, body):
    response = _call(client, method, path, body, {"x-api-key": "wrong-key"})
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_auth_x_api_key_passes_on_every_protected_route(client, method, path, body):
    assert _call(client, method, path, body, AUTH).status_code in (200, 202)


def test_auth_bad_body_without_key_is_401_not_400(client):
    assert_error(post(client, "/events", b"{broken", headers={}), 401, "unauthorized")


@pytest.mark.parametrize("header", ["x-api-key", "X-API-Key", "X-Api-Key"])
def test_auth_x_api_key_header_name_is_case_insensitive(client, header):
    assert get(client, OK_PATH, headers={header: DEV_KEY}).status_code == 200


@pytest.mark.parametrize("username", ["braze", "", "Zoë user"])
def test_auth_basic_with_key_as_password_passes_for_any_username(client, username):
    assert get(client, OK_PATH, headers=_basic(f"{username}:{DEV_KEY}")).status_code == 200


def test_auth_basic_scheme_is_case_insensitive(client):
    token = base64.b64encode(f"u:{DEV_KEY}".encode()).decode()
    assert get(client, OK_PATH, headers={"authorization": f"basic {token}"}).status_code == 200


def test_auth_basic_with_wrong_password_is_401(client):
    assert_error(get(client, OK_PATH, headers=_basic("braze:wrong")), 401, "unauthorized")


def test_auth_basic_with_key_as_username_is_401(client):
    assert_error(get(client, OK_PATH, headers=_basic(f"{DEV_KEY}:")), 401, "unauthorized")


@pytest.mark.parametrize(
    "value",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(DEV_KEY.encode()).decode(),  # no colon
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic",
        "Basic ",
        f"Bearer {DEV_KEY}",
        DEV_KEY,
    ],
)
def test_auth_malformed_authorization_header_is_401(client, value):
    assert_error(get(client, OK_PATH, headers={"Authorization": value}), 401, "unauthorized")


def test_auth_empty_x_api_key_is_401(client):
    assert_error(get(client, OK_PATH, headers={"x-api-key": ""}), 401, "unauthorized")


def test_auth_wrong_x_api_key_is_not_rescued_by_basic(client):
    headers = {"x-api-key": "wrong", **_basic(f"u:{DEV_KEY}")}
    assert_error(get(client, OK_PATH, headers=headers), 401)


def test_auth_key_prefix_or_padding_is_401(client):
    for key in (DEV_KEY[:-1], DEV_KEY + "x", DEV_KEY.upper()):
        assert_error(get(client, OK_PATH, headers={"x-api-key": key}), 401)


def test_auth_401_body_never_echoes_the_key(client):
    response = get(client, OK_PATH, headers={"x-api-key": "secret-guess-123"})
    assert b"secret-guess-123" not in response.body
    assert DEV_KEY.encode() not in response.body


# -- key rotation and failing closed --------------------------------------------------------


def test_auth_rotation_accepts_old_and_new_keys(stage_client):
    with stage_client("old-key, new-key") as c:
        for key in ("old-key", "new-key"):
            assert get(c, OK_PATH, headers={"x-api-key": key}).status_code == 200
            assert get(c, OK_PATH, headers=_basic(f"braze:{key}")).status_code == 200
        assert_error(get(c, OK_PATH, headers={"x-api-key": DEV_KEY}), 401)
        assert_error(get(c, OK_PATH, headers={"x-api-key": "old-key,new-key"}), 401)


def test_auth_rotation_removed_key_stops_working(stage_client):
    with stage_client("new-key") as c:
        assert_error(get(c, OK_PATH, headers={"x-api-key": "old-key"}), 401)
        assert get(c, OK_PATH, headers={"x-api-key": "new-key"}).status_code == 200


@pytest.mark.parametrize("keys", ["", " , ,"])
def test_auth_stage_without_keys_fails_closed(stage_client, keys):
    with stage_client(keys) as c:
        for headers in ({}, {"x-api-key": ""}, {"x-api-key": "anything"}, _basic("a:")):
            assert_error(get(c, OK_PATH, headers=headers), 401, "unauthorized")
        for method, path, body in PROTECTED:
            assert_error(_call(c, method, path, body, {"x-api-key": DEV_KEY}), 401)
        assert c.http.get("/health").status_code == 200


# -- GET /health ----------------------------------------------------------------------------


def test_health_needs_no_key_and_reports_model_version(client):
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["provider"] == "local"
    assert body["model_version"].startswith("user-personalization-")


def test_health_with_a_wrong_key_still_answers(client):
    assert client.http.get("/health", headers={"x-api-key": "wrong"}).status_code == 200


def test_health_reveals_no_secrets(stage_client):
    with stage_client("very-secret-key-1,very-secret-key-2") as c:
        body = c.http.get("/health").body
    assert b"very-secret-key" not in body
    assert DEV_KEY.encode() not in body
    assert b"Traceback" not in body


def test_health_model_version_is_stable_across_events(client):
    before = json.loads(client.http.get("/health").body)["model_version"]
    post(client, "/events", {"user_id": "h", "events": [{"event_type": "v", "item_id": "toys-1"}]})
    assert json.loads(client.http.get("/health").body)["model_version"] == before
