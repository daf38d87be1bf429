"""Braze's side of a message in tests: the README's Liquid snippets, rendered with python-liquid
and the project's emulation of Braze's `connected_content` and `abort_message` tags
(`chalicelib.api.preview.braze_liquid`), whose calls go to the app through `chalice.test.Client`.

It is an emulation, not Braze: it follows Braze's documented behaviour (JSON objects get
`__http_status_code__`, arrays do not; a 404 saves nothing; `abort_message` stops the message),
not Braze's code, and makes one call per tag with no cache or retries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from chalice.test import Client

from chalicelib.api.preview.braze_liquid import Fetch, Rendered, Response, render
from chalicelib.api.preview.message import KEY_PLACEHOLDER
from chalicelib.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
STAGE = "/api"  # the README's URLs carry API Gateway's stage name


def readme_snippets() -> list[str]:
    """Every ```liquid block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"```liquid\n(.*?)```", text, re.DOTALL)]


def client_fetch(client: Client, key: str | None, calls: list[str] | None = None) -> Fetch:
    """connected_content's call through the test client: the README's `https://YOUR-API/api/...`
    goes to the app's route, and its `YOUR-KEY` becomes `key` (None: no key sent)."""

    def fetch(method: str, url: str, headers: Mapping[str, str], body: str) -> Response:
        parts = urlsplit(url)
        assert parts.netloc == "YOUR-API" and parts.path.startswith(f"{STAGE}/"), url
        sent = {k: v for k, v in headers.items() if v != KEY_PLACEHOLDER}
        if key is not None and KEY_PLACEHOLDER in headers.values():
            sent["x-api-key"] = key
        path = parts.path.removeprefix(STAGE) + (f"?{parts.query}" if parts.query else "")
        if calls is not None:
            calls.append(path)
        answer = client.http.request(method, path, headers=sent, body=body.encode())
        headers_out = {k.lower(): v for k, v in answer.headers.items()}
        return Response(answer.status_code, headers_out, answer.body.decode("utf-8"))

    return fetch


def render_for(
    client: Client, template: str, user_id: str, key: str | None, **attributes: object
) -> Rendered:
    return render(template, client_fetch(client, key), {"user_id": user_id, **attributes})
