"""The preview page in a real browser (headless Chromium), served by the production server as
`make run` serves it: Basic auth from the browser, the cards of a known and a brand-new user, the
page following template and filter changes, and no request leaving the app. Screenshots go to
`artifacts/`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import PROJECT_ROOT
from tests.conftest import DEV_KEY
from tests.functional.artifacts import ARTIFACTS
from tests.functional.browser import browser  # noqa: F401 - the fixture
from tests.functional.live import LiveServer

CATEGORY_FILTER = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    base = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    config = tmp_path / "recs.toml"
    config.write_text(f"{base.rstrip()}\nby-category = '{CATEGORY_FILTER}'\n")
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
    assert [u for u in requests if not u.startswith(origin + "/")] == []
    assert sum("/preview?" in u for u in requests) >= 4  # the page asked again as things changed
