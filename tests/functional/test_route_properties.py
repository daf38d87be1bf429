"""Property test over every route, on both servers' code paths (the Chalice handler and the
production server's ASGI application): whatever the method, path, query, headers and body, no
5xx (but a 503 with Retry-After for a write the store cannot take), every body valid JSON (no
NaN or Infinity), every error the `{"error", "message"}` envelope, every item list a JSON array
of items with an id."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.api import server
from tests.conftest import DEV_KEY

ROUTES = [
    "/recommendations",
    "/related-items",
    "/rankings",
    "/events",
    "/users",
    "/items",
    "/health",
]
ITEM_ROUTES = {"/recommendations", "/related-items", "/rankings"}
WRITES = {"/events", "/users", "/items"}
FIELDS = [
    "user_id",
    "item_id",
    "item_ids",
    "num_results",
    "filter",
    "session_id",
    "events",
    "users",
    "items",
    "event_type",
    "timestamp",
    "event_value",
    "event_id",
    "properties",
    "impression",
    "recommendation_id",
    "filter_values",
    "PRICE",
    "id",
    "url",
    "CATEGORY",
]

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "u1",
            "garden-1",
            "exclude-purchased",
            "NaN",
            "1e999",
            "-1",
            "0",
            "101",
            "javascript:alert(1)",
            "<script>",
            "x" * 300,
            "\u0000",
            "%ff",
            "2024-01-01T00:00:00",
            "9" * 40,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=12)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=30,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_like.map(lambda v: json.dumps(v).encode()),  # NaN/Infinity literals included
    st.fixed_dictionaries(
        {
            "user_id": hostile_text,
            "events": st.lists(
                st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=6), max_size=12
            ),
        },
    ).map(lambda v: json.dumps(v).encode()),
)
auths = st.sampled_from(
    [
        {"x-api-key": DEV_KEY},
        {"x-api-key": "wrong"},
        {},
        {"authorization": "Basic " + base64.b64encode(f"braze:{DEV_KEY}".encode()).decode()},
        {"authorization": "Basic !!!"},
        {"authorization": f"Bearer {DEV_KEY}"},
    ]
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "*/*",
    ]
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(
            ["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        ),
        "path": st.one_of(st.sampled_from(ROUTES), st.sampled_from(["/", "/nope", "/health/"])),
        "query": st.lists(
            st.tuples(st.sampled_from(FIELDS[:5]) | st.text(min_size=1, max_size=8), hostile_text),
            max_size=6,
        ),
        "auth": auths,
        "content_type": content_types,
        "body": bodies,
    }
)


def _check(method: str, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
    assert b"Traceback" not in body
    route = path.rstrip("/") or "/"
    if status == 503:
        assert method == "POST" and route in WRITES, body
        assert headers["retry-after"].isdigit()
    else:
        assert status < 500, body
    assert headers["content-type"] == "application/json"
    if method == "HEAD":
        return
    data = json.loads(body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    if status >= 400:
        assert isinstance(data, dict) and set(data) == {"error", "message"}, data
        assert isinstance(data["error"], str) and isinstance(data["message"], str)
    elif route in ITEM_ROUTES:
        assert isinstance(data, list)
        assert all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in data)


def _headers(request: dict[str, Any]) -> dict[str, str]:
    headers = dict(request["auth"])
    if request["content_type"] is not None:
        headers["content-type"] = request["content_type"]
    return headers


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests)
def test_the_chalice_handler_answers_every_request_in_the_contract(client, request) -> None:
    query = urlencode(request["query"])
    path = request["path"] + (f"?{query}" if query else "")
    response = client.http.request(
        request["method"], path, headers=_headers(request), body=request["body"] or b""
    )
    headers = {k.lower(): v for k, v in response.headers.items()}
    _check(request["method"], request["path"], response.status_code, headers, response.body)


async def _asgi(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []
    parts = [body[:50], body[50:]]  # the body in two messages, as a client may send it

    async def receive() -> dict[str, Any]:
        chunk = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await server.application(scope, receive, send)
    start, content = sent
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert int(response_headers["content-length"]) == len(content["body"])
    return start["status"], response_headers, content["body"]


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests, deep=st.sampled_from(["", "/a/b", "/recommendations/x"]))
def test_the_production_server_answers_every_request_in_the_contract(
    data_dir, monkeypatch, request, deep
) -> None:
    monkeypatch.setenv("RECS_API_KEYS", DEV_KEY)
    path = deep or request["path"]
    status, headers, body = asyncio.run(
        _asgi(
            request["method"],
            path,
            urlencode(request["query"]),
            _headers(request),
            request["body"] or b"",
        )
    )
    _check(request["method"], path, status, headers, body)
