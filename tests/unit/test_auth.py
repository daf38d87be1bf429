"""API-key checks: header or Basic auth, rotation, fail closed."""

from __future__ import annotations

import base64

import pytest

from chalicelib.api.auth import is_authorized, supplied_key


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_header_key_matches_any_configured_key_so_keys_can_rotate() -> None:
    assert is_authorized({"x-api-key": "new"}, ["old", "new"])
    assert is_authorized({"x-api-key": "old"}, ["old", "new"])
    assert not is_authorized({"x-api-key": "older"}, ["old", "new"])


def test_basic_auth_uses_the_password_and_ignores_the_user_name() -> None:
    assert is_authorized(basic("braze", "k1"), ["k1"])
    assert is_authorized(basic("", "k1"), ["k1"])
    assert not is_authorized(basic("k1", ""), ["k1"])


def test_a_password_containing_colons_is_kept_whole() -> None:
    assert supplied_key(basic("u", "a:b:c")) == "a:b:c"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"authorization": "Bearer k1"},
        {"authorization": "Basic"},
        {"authorization": "Basic not-base64!!"},
        {"authorization": "Basic " + base64.b64encode(b"\xff\xfe:k1").decode()},
        {"authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    ],
)
def test_missing_or_malformed_credentials_are_refused(headers: dict[str, str]) -> None:
    assert not is_authorized(headers, ["k1"])


def test_no_configured_key_refuses_everyone() -> None:
    assert not is_authorized({"x-api-key": "anything"}, [])
    assert not is_authorized({"x-api-key": ""}, [""])


def test_non_ascii_keys_compare_without_error() -> None:
    assert is_authorized({"x-api-key": "clé-ü"}, ["clé-ü"])
    assert not is_authorized({"x-api-key": "clé-u"}, ["clé-ü"])
