"""The preview page in a real browser (headless Chromium), served by the production server as
`make run` serves it: Basic auth from the browser, the cards of a known and a brand-new user, the
page following template and filter changes, and no request leaving the app; then every other
control: num_results (and a refused value), the item fields, what errors and empty lists render,
the related-items card, the CSP and security headers, and hostile item names and user ids shown
as text with no script run. Screenshots go to `artifacts/`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.configs import with_filter
from tests.conftest import DEV_KEY
from tests.functional.artifacts import ARTIFACTS
from tests.functional.browser import browser  # noqa: F401 - the fixture
from tests.functional.live import LiveServer

CATEGORY_FILTER = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    config = with_filter(tmp_path, "by-category", CATEGORY_FILTER)
    live = LiveServer(data_dir, "--workers", "1", env={"RECS_CONFIG": str(config)})
    yield live
    live.stop()


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def test_the_preview_page_in_a_browser(browser: Any, server: LiveServer) -> None:  # noqa: F811
    from playwright.sync_api import expect  # only where a browser exists

    origin = f"http://127.0.0.1:{server.port}"
    context = browser.new_context(
        http_credentials={"username": "marketer", "password": DEV_KEY},
        viewport={"width": 1280, "height": 1000},
    )
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    # A request the CSP blocks never leaves the browser, but Playwright may still report it (as
    # failed with "csp"): what counts is what was sent, finished or failed for another reason.
    sent: list[str] = []
    context.on("requestfinished", lambda request: sent.append(request.url))
    context.on("requestfailed", lambda r: None if r.failure == "csp" else sent.append(r.url))
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "script-src" in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{origin}/preview?user_id=u3")
    assert _text(page, "#source") == "personalized"
    assert _text(page, "#state") == "sent"
    card = page.frame_locator("iframe.card")
    assert card.locator("a").count() == 3
    first_name = str(card.locator("a").first.inner_text()).strip()
    assert first_name
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "preview-known-user.png"), full_page=True)

    # A brand-new user, typed into the form: the page asks again and shows the fallback card.
    page.fill("#user_id", "brand-new-visitor")
    expect(page.locator("#source")).to_have_text("fallback")  # waits; the CSP forbids eval
    assert "reason: unknown_user" in _text(page, "#summary")
    assert card.locator("a").count() == 3
    page.screenshot(path=str(ARTIFACTS / "preview-new-user.png"), full_page=True)

    # The template changes: the card follows.
    page.fill("#template", "<p class='hello'>Hello {{ recommendations[0].id }}</p>")
    card.locator("p.hello").wait_for()
    assert str(card.locator("p.hello").inner_text()).startswith("Hello ")

    # A filter with a placeholder: its value field appears, and the items follow it.
    page.fill("#user_id", "u3")
    page.select_option("#filter", "by-category")
    page.wait_for_selector("#fv-CATEGORY")
    page.fill("#fv-CATEGORY", "toys")
    expect(page.locator("#message")).to_contain_text("CATEGORY=toys")
    expect(page.locator("#source")).to_have_text("personalized")
    ids = page.locator("#fields tbody tr td:nth-child(2)").all_inner_texts()
    assert ids and all(i.startswith("toys-") for i in ids)
    assert page.url.endswith("CATEGORY=toys") or "CATEGORY=toys" in page.url
    page.screenshot(path=str(ARTIFACTS / "preview-filter.png"), full_page=True)

    context.close()
    assert not problems, problems
    assert requests, "the browser made no request"
    assert sent and [u for u in sent if not u.startswith(origin + "/")] == []
    assert sum("/preview?" in u for u in requests) >= 4  # the page asked again as things changed


EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _rows(page: Any) -> Any:
    return page.locator("#fields tbody tr")


def _num_results_and_fields(page: Any) -> None:
    from playwright.sync_api import expect  # only where a browser exists

    # The item fields Liquid can use, one row per item of the response.
    columns = page.locator("#fields thead th").all_inner_texts()
    assert {"id", "url", "name", "price", "image"} <= set(columns), columns
    assert _rows(page).count() == int(page.input_value("#num_results"))
    # num_results: the call, the response and the table follow.
    page.fill("#num_results", "2")
    expect(_rows(page)).to_have_count(2)
    expect(page.locator("#summary")).to_contain_text("2 item(s)")
    expect(page.locator("#message")).to_contain_text("num_results=2")
    page.fill("#num_results", "500")  # beyond 1..100: the page says the request was refused
    expect(page.locator("#result .problem")).to_contain_text("refused this request (400)")
    page.fill("#num_results", "8")
    expect(_rows(page)).to_have_count(8)


def _outcomes(page: Any, guarded: str) -> None:
    from playwright.sync_api import expect

    # What a wrong key, an unknown filter, no answer and an empty list render.
    assert page.locator("#outcomes li").count() >= 4
    text = page.locator("#outcomes").inner_text()
    assert "HTTP 401, abort_message('recommendations call failed')" in text
    assert "HTTP 400, abort_message('recommendations call failed')" in text
    assert "HTTP 200, abort_message('no recommendations')" in text
    # A template without the guard: the page shows that an error would send a blank card.
    page.fill("#template", "{% for item in recommendations %}<b>{{ item.id }}</b>{% endfor %}")
    expect(page.locator("#outcomes")).to_contain_text("sent blank")
    page.screenshot(path=str(ARTIFACTS / "preview-unguarded.png"), full_page=True)
    page.fill("#template", guarded)
    expect(page.locator("#outcomes")).not_to_contain_text("sent blank")


def _related_items_with_hostile_names(page: Any, guarded: str) -> None:
    from playwright.sync_api import expect

    page.fill("#item_id", "garden-20")
    expect(page.locator("#result h2").first).to_contain_text("items related to garden-20")
    expect(page.locator("#message")).to_contain_text("related-items?item_id=garden-20")
    expect(page.locator("#fields")).to_contain_text(EVIL)
    card = page.frame_locator("iframe.card")
    assert card.locator("a").count() == 3
    assert EVIL in str(card.locator("body").inner_text())  # the README's card escapes names
    page.screenshot(path=str(ARTIFACTS / "preview-related-hostile.png"), full_page=True)
    # Braze itself escapes nothing: a template that prints the name raw gets a script, which the
    # sandboxed frame (no allow-scripts) and the CSP keep inert.
    raw = "{% for i in recommendations %}<p class=raw>{{ i.name }}</p>{% endfor %}"
    page.fill("#template", raw)
    card.locator("p.raw").first.wait_for()
    assert card.locator("p.raw script").count() >= 1, card.locator("body").inner_html()
    assert card.locator("p.raw img").count() >= 1
    page.fill("#template", guarded)


def test_every_control_of_the_preview_in_a_browser(browser: Any, server: LiveServer) -> None:  # noqa: F811
    """num_results, the item fields, what errors and empty lists render, the related-items card,
    the strict CSP and escaping of hostile data, each seen as the marketer sees it."""
    from playwright.sync_api import expect  # only where a browser exists

    # Hostile names on the garden items: any garden list shows them.
    hostile = [
        {"item_id": f"garden-{n}", "properties": {"name": EVIL, "price": 1}} for n in range(10)
    ]
    body = json.dumps({"items": hostile}).encode()
    headers = {"x-api-key": DEV_KEY, "content-type": "application/json"}
    assert server.request("POST", "/items", body, headers).status == 202

    context = browser.new_context(
        http_credentials={"username": "marketer", "password": DEV_KEY},
        viewport={"width": 1280, "height": 1000},
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    response = page.goto(f"http://127.0.0.1:{server.port}/preview?user_id=u3")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["x-frame-options"] == "DENY"
    guarded = page.input_value("#template")

    _num_results_and_fields(page)
    _outcomes(page, guarded)
    _related_items_with_hostile_names(page, guarded)
    # A hostile user id typed into the form is text on the page, never markup.
    page.fill("#item_id", "")
    page.fill("#user_id", '"><svg onload=alert(4)>')
    expect(page.locator("#result h2").first).to_contain_text('"><svg onload=alert(4)>')
    assert page.locator("#result svg").count() == 0

    page.wait_for_timeout(300)  # a late handler would have fired by now
    context.close()
    assert dialogs == [], dialogs
