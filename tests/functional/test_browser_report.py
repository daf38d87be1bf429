"""The evaluation report opened in a real browser (headless Chromium): its plots are there and
drawn, and opening it makes no request but for the file itself; the served report reached from
the preview page's console, which shows what each campaign serves, and back; and campaign names
chosen by someone hostile shown as text in the attribution section, with no script run and no
request made. Screenshots go to `artifacts/report.png`, `artifacts/report-served.png` and
`artifacts/report-attribution.png`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib import cli
from tests.attribution_support import HOSTILE, hostile_shop, keep
from tests.conftest import DEV_KEY
from tests.functional.artifacts import ARTIFACTS
from tests.functional.browser import browser  # noqa: F401 - the fixture
from tests.functional.live import LiveServer


def test_the_report_in_a_browser(browser: Any, data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "report.html"
    assert cli.main(["report", "--output", str(out)]) == 0
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    charts = page.locator("svg")
    assert charts.count() >= 15  # five plots for each of the three solutions
    for n in range(charts.count()):
        chart = charts.nth(n)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        assert chart.locator(".mark").count() > 0, chart.get_attribute("aria-label")
    titles = [charts.nth(n).get_attribute("aria-label") for n in range(charts.count())]
    assert "Popularity of what is recommended against the catalogue's" in titles
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.close()
    assert requests == [out.as_uri()]


def _analyst(browser: Any) -> tuple[Any, list[str]]:  # noqa: F811
    """A browser context with the key (Basic auth), and every URL it requests."""
    context = browser.new_context(
        http_credentials={"username": "analyst", "password": DEV_KEY},
        viewport={"width": 1440, "height": 1000},
    )
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    return context, requests


def test_the_console_links_the_report_in_a_browser(browser: Any, data_dir: Path) -> None:  # noqa: F811
    """From the preview page's console (what each campaign serves) to the served report."""
    server = LiveServer(data_dir, "--workers", "1")
    try:
        origin = f"http://127.0.0.1:{server.port}"
        served = json.loads(server.request("GET", "/health").body)["campaigns"]
        context, requests = _analyst(browser)
        page = context.new_page()
        page.goto(f"{origin}/preview")
        console = page.locator("#console").inner_text()
        for campaign, version in served.items():
            assert f"{campaign} serves {version}" in console
        page.click("#report-link")
        page.wait_for_url(f"{origin}/report")
        assert page.title() == "Solution versions: evaluation report"
        assert page.locator("svg").count() >= 15
        assert page.locator(".served").count() == len(served)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-served.png"), full_page=True)
        page.click("#preview-link")  # and back, as the analyst goes
        page.wait_for_url(f"{origin}/preview")
        assert page.title() == "Content Card preview"
        context.close()
    finally:
        server.stop()
    assert requests == [f"{origin}/preview", f"{origin}/report", f"{origin}/preview"]


def _hostile_names_are_text(page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    assert page.title() == "Solution versions: evaluation report"  # no script retitled it
    names = page.locator("#attribution-by-campaign th[scope=row]").all_inner_texts()
    assert HOSTILE[0] in names and HOSTILE[1] in names  # verbatim, as text
    assert any("</table></section><h1 id=forged>forged</h1>" in n for n in names)
    for forged in ("#attribution img", "#attribution script", "#evil", "#forged", "b[title]"):
        assert page.locator(forged).count() == 0, forged
    assert page.locator("#attribution-by-version").is_visible()  # the page after them intact
    assert page.locator("#attribution svg .mark").count() >= 3  # CTR per version, drawn
    assert dialogs == []


def test_hostile_campaign_names_are_inert_in_the_browser(
    browser: Any,  # noqa: F811
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """The file `report` writes and the page `GET /report` serves, over the same history."""
    keep(*hostile_shop())
    out = tmp_path / "report.html"
    assert cli.main(["report", "--output", str(out)]) == 0
    server = LiveServer(data_dir, "--workers", "1")
    try:
        origin = f"http://127.0.0.1:{server.port}"
        context, requests = _analyst(browser)
        page = context.new_page()
        for url in (out.as_uri(), f"{origin}/report"):
            page.goto(url)
            _hostile_names_are_text(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#attribution").screenshot(path=str(ARTIFACTS / "report-attribution.png"))
        context.close()
    finally:
        server.stop()
    assert requests == [out.as_uri(), f"{origin}/report"]
