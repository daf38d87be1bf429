"""The evaluation report opened in a real browser (headless Chromium): its plots are there and
drawn, and opening it makes no request but for the file itself; and the served report reached
from the preview page's console, which shows what each campaign serves. Screenshots go to
`artifacts/report.png` and `artifacts/report-served.png`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib import cli
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


def test_the_console_links_the_report_in_a_browser(browser: Any, data_dir: Path) -> None:  # noqa: F811
    """From the preview page's console (what each campaign serves) to the served report."""
    server = LiveServer(data_dir, "--workers", "1")
    try:
        origin = f"http://127.0.0.1:{server.port}"
        served = json.loads(server.request("GET", "/health").body)["campaigns"]
        context = browser.new_context(
            http_credentials={"username": "analyst", "password": DEV_KEY},
            viewport={"width": 1440, "height": 1000},
        )
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
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
        context.close()
    finally:
        server.stop()
    assert requests == [f"{origin}/preview", f"{origin}/report"]
