"""Functional-test fixtures: every response is checked for leaks, plus clients on an empty store
and on a stage whose API keys a test chooses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client, HTTPResponse, TestHTTPClient

from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from tests.braze_support import fake_braze
from tests.configs import with_filter

__all__ = ["fake_braze"]  # the fake Braze of the push tests

WRITES = ("/events", "/users", "/items")


@pytest.fixture(autouse=True)
def _every_response_is_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """No response ever shows a traceback or a 5xx (but a 503 with Retry-After for a write the
    store cannot take now), and every error is our JSON envelope."""
    original = TestHTTPClient.request

    def checked(self: TestHTTPClient, *args: Any, **kwargs: Any) -> HTTPResponse:
        response = original(self, *args, **kwargs)
        assert b"Traceback" not in response.body
        method, path = [*args, kwargs.get("method"), kwargs.get("path")][:2]
        if response.status_code == 503 and method == "POST" and path in WRITES:
            assert response.headers["Retry-After"].isdigit()
            assert json.loads(response.body)["error"] == "unavailable"
        else:
            assert response.status_code < 500, response.body
        if response.status_code >= 400:
            body = json.loads(response.body)
            assert isinstance(body, dict)
            assert set(body) == {"error", "message"}, body
        return response

    monkeypatch.setattr(TestHTTPClient, "request", checked)


@pytest.fixture
def empty_client(empty_data_dir: Path) -> Iterator[Client]:
    """A `local`-stage client on a store with no data and no model."""
    from app import app

    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as c:
        yield c
    runtime.reset()


@pytest.fixture
def stage_client(data_dir: Path, tmp_path: Path) -> Iterator[Callable[[str], Client]]:
    """Makes a `local`-stage client whose `RECS_API_KEYS` is the given string.

    Stage variables override the process environment in the test client, so the key list is set
    in a copy of `.chalice/config.json` in a temporary project directory.
    """
    from app import app

    def make(api_keys: str) -> Client:
        project = tmp_path / f"project-{abs(hash(api_keys))}"
        (project / ".chalice").mkdir(parents=True, exist_ok=True)
        config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
        config["stages"]["local"]["environment_variables"]["RECS_API_KEYS"] = api_keys
        (project / ".chalice" / "config.json").write_text(json.dumps(config))
        return Client(app, stage_name="local", project_dir=str(project))

    yield make
    runtime.reset()


@pytest.fixture
def cat_client(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The shop with the README's `by-category` filter set on the test items' CATEGORY."""
    from app import app

    expression = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    monkeypatch.setenv("RECS_CONFIG", str(with_filter(tmp_path, "by-category", expression)))
    runtime.reset()
    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as c:
        yield c
    runtime.reset()
