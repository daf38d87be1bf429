"""Helpers shared by the functional tests: JSON requests through the Chalice test client and the
checks every response must pass."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from chalice.test import Client, HTTPResponse

from tests.conftest import AUTH

JSON_TYPE = "application/json"


def get(client: Client, path: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    return client.http.get(path, headers=AUTH if headers is None else headers)


def post(
    client: Client,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str = JSON_TYPE,
) -> HTTPResponse:
    """POST `body` (JSON-encoded unless already bytes or str) with the dev key by default."""
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode("utf-8")
    sent = {**(AUTH if headers is None else headers), "content-type": content_type}
    return client.http.post(path, headers=sent, body=raw)


def recs_path(user_id: str, **params: object) -> str:
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"/recommendations?user_id={quote(user_id, safe='')}" + (f"&{query}" if query else "")


def items_of(response: HTTPResponse) -> list[dict[str, Any]]:
    """The JSON array of a 200 item-list response."""
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == JSON_TYPE
    body = json.loads(response.body)
    assert isinstance(body, list)
    return body


def ids_of(response: HTTPResponse) -> list[str]:
    return [item["id"] for item in items_of(response)]


def source_of(response: HTTPResponse) -> str:
    return response.headers["X-Recommendation-Source"]


def category(item_id: str) -> str:
    return item_id.rsplit("-", 1)[0]


def purchases(user_id: str, *item_ids: str, event_type: str = "purchase") -> dict[str, Any]:
    return {
        "user_id": user_id,
        "session_id": f"s-{user_id}",
        "events": [{"event_type": event_type, "item_id": item} for item in item_ids],
    }


def assert_error(response: HTTPResponse, status: int, code: str | None = None) -> str:
    """The response is our JSON error envelope with `status` (and `code`); returns the message."""
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == JSON_TYPE
    body = json.loads(response.body)
    assert isinstance(body, dict)
    assert set(body) == {"error", "message"}
    assert isinstance(body["error"], str)
    assert isinstance(body["message"], str)
    assert body["message"]
    if code is not None:
        assert body["error"] == code
    return body["message"]
