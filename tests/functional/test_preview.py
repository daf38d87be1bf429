"""`GET /preview`: the Content Card page through the Chalice app. Auth (and the browser's Basic
challenge), the card over exactly the JSON `/recommendations` answers, the source, the item
fields, what errors and empty lists render, the related-items card, filters with values, and
hostile templates and item data, always escaped under a strict Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import sys

import pytest
from chalice.test import Client, HTTPResponse

from tests.conftest import DEV_KEY
from tests.functional.support import assert_error, get, post

BASIC = {"authorization": "Basic " + base64.b64encode(f"marketer:{DEV_KEY}".encode()).decode()}


def page(client: Client, query: str, headers: dict[str, str] | None = None) -> str:
    response = client.http.get(f"/preview?{query}", headers=headers or BASIC)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response.body.decode("utf-8")


def section(text: str, element_id: str) -> str:
    """The text inside the element with `element_id` (a <pre> or <span>), unescaped."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(pre|span|table)>', text, re.DOTALL)
    assert match, element_id
    return html.unescape(match.group(1))


def test_a_browser_is_asked_for_the_key(client: Client) -> None:
    response = client.http.get("/preview?user_id=u1")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = {"authorization": "Basic " + base64.b64encode(b"m:nope").decode()}
    assert client.http.get("/preview?user_id=u1", headers=wrong).status_code == 401
    # The JSON routes are for machines: no challenge there.
    assert "WWW-Authenticate" not in client.http.get("/recommendations?user_id=u1").headers


def test_the_header_key_works_too_and_no_user_gives_the_form(client: Client) -> None:
    text = page(client, "", {"x-api-key": DEV_KEY})
    assert '<form id="controls"' in text and "Enter a user id" in text


def test_the_card_is_rendered_over_the_json_recommendations_answers(client: Client) -> None:
    text = page(client, "user_id=u3&num_results=4")
    expected = get(client, "/recommendations?user_id=u3&num_results=4")
    assert json.loads(section(text, "json")) == json.loads(expected.body)
    assert section(text, "source") == "personalized"
    assert section(text, "state") == "sent"
    output = section(text, "output")
    for item in json.loads(expected.body)[:3]:  # the default card shows three
        assert item["name"] in output and item["url"] in output
    fields = section(text, "fields")
    for item in json.loads(expected.body):
        assert item["id"] in fields and item["image"] in fields
    message = section(text, "message")
    assert "recommendations?user_id={{${user_id} | url_param_escape}}&num_results=4" in message


def test_a_brand_new_user_sees_the_fallback_card(client: Client) -> None:
    text = page(client, "user_id=someone-new")
    assert section(text, "source") == "fallback"
    assert "reason: unknown_user" in text
    assert section(text, "state") == "sent"


def test_what_errors_and_empty_lists_render_is_shown(client: Client) -> None:
    text = page(client, "user_id=u3")
    outcomes = html.unescape(text[text.index('id="outcomes"') :])
    assert "HTTP 401, abort_message('recommendations call failed')" in outcomes
    assert "HTTP 400, abort_message('recommendations call failed')" in outcomes
    assert "HTTP 200, abort_message('no recommendations')" in outcomes
    assert "HTTP 404, abort_message('no recommendations')" in outcomes
    # A template without the guard shows the blank card an error would send.
    bare = "{% for item in recommendations %}{{ item.name }}{% endfor %}"
    text = page(client, "user_id=u3&template=" + _q(bare))
    assert "sent blank" in html.unescape(text[text.index('id="outcomes"') :])


def test_the_related_items_card(client: Client) -> None:
    text = page(client, "item_id=garden-1&num_results=5")
    expected = get(client, "/related-items?item_id=garden-1&num_results=5")
    assert json.loads(section(text, "json")) == json.loads(expected.body)
    assert "related-items?item_id=garden-1&num_results=5" in section(text, "message")


def test_a_filter_and_its_values(cat_client: Client) -> None:
    text = page(cat_client, "user_id=u0&filter=by-category&CATEGORY=kitchen")
    assert 'name="CATEGORY" value="kitchen"' in text
    items = json.loads(section(text, "json"))
    assert items and all(i["id"].startswith("kitchen-") for i in items)
    assert "filter=by-category&CATEGORY=kitchen" in section(text, "message")
    missing = page(cat_client, "user_id=u0&filter=by-category")
    assert "missing_filter_value" in section(missing, "json")
    assert section(missing, "state") == "aborted: not sent"


def test_an_unknown_filter_or_bad_number_is_refused(client: Client) -> None:
    assert_error(client.http.get("/preview?user_id=u1&filter=nope", headers=BASIC), 400)
    assert_error(client.http.get("/preview?user_id=u1&num_results=0", headers=BASIC), 400)
    long = "x" * 20_001
    assert_error(client.http.get(f"/preview?user_id=u1&template={long}", headers=BASIC), 400)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_hostile_templates_and_item_data_are_escaped(client: Client) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    item = {"item_id": "garden-1", "properties": {"name": evil, "price": 3}}
    assert post(client, "/items", {"items": [item]}).status_code == 202
    template = "</textarea><script>alert(3)</script>{{ recommendations[0].name }}"
    text = page(
        client,
        "user_id=" + _q('"><svg onload=alert(4)>') + "&item_id=garden-2&template=" + _q(template),
    )
    scripts = re.findall(r"<script>", text)
    assert len(scripts) == 1  # the page's own, allowed by its hash
    for raw in ("<img src=x", "<svg onload", "</textarea><script>", 'onerror="alert'):
        assert raw not in text
    # The only executable script is the page's own: its hash is the CSP's.
    script = re.search(r"<script>(.*?)</script>", text, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    response = client.http.get("/preview?user_id=u1", headers=BASIC)
    csp = response.headers["Content-Security-Policy"]
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "http" not in csp


def test_nothing_on_the_page_loads_from_another_origin(client: Client) -> None:
    text = page(client, "user_id=u3")
    outside_srcdoc = re.sub(r'srcdoc="[^"]*"', "", text)
    assert not re.findall(r'(?:src|href|action)="(?:https?:)?//', outside_srcdoc)
    # The card frame is sandboxed: no script, no same-origin access.
    assert '<iframe class="card" sandbox=""' in text
    # Its document states its own policy before anything it loads: images from data: alone.
    found = re.search(r'srcdoc="([^"]*)"', text)
    assert found is not None
    srcdoc = html.unescape(found.group(1))
    policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert srcdoc.startswith(f'<meta http-equiv="Content-Security-Policy" content="{policy}">')
    assert '<img src="https://shop.example/' in srcdoc  # what the policy keeps from loading


def test_broken_and_endless_templates_are_reported_not_run_forever(client: Client) -> None:
    text = page(client, "user_id=u3&template=" + _q("{% if recommendations %}"))
    assert "Liquid error" in text
    endless = "{% for i in (1..100000000) %}{{ i }}{% endfor %}"
    text = page(client, "user_id=u3&template=" + _q(endless))
    assert "loop iteration limit" in text


def test_a_bad_connected_content_option_is_a_liquid_error(client: Client) -> None:
    template = "{% connected_content https://x/api/recommendations?user_id=1 :headers nope %}"
    text = page(client, "user_id=u3&template=" + _q(template))
    assert "Liquid error" in text and ":headers must be a JSON object" in html.unescape(text)


def test_a_template_cannot_call_the_preview_or_another_host(client: Client) -> None:
    template = (
        "{% connected_content https://elsewhere.example/api/preview?user_id=1 :save x %}"
        "{{ x.error }}"
    )
    text = page(client, "user_id=u3&template=" + _q(template))
    assert "answered 599" in html.unescape(text)


def test_without_python_liquid_the_route_says_where_it_runs(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "chalicelib.api.preview.page", None)  # as on Lambda
    response: HTTPResponse = client.http.get("/preview?user_id=u1", headers=BASIC)
    message = assert_error(response, 404, "not_found")
    assert "python -m chalicelib serve" in message
