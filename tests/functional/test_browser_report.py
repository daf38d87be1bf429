"""The evaluation report opened in a real browser (headless Chromium): its plots are there and
drawn, and opening it makes no request but for the file itself. A screenshot goes to
`artifacts/report.png`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib import cli
from tests.functional.artifacts import ARTIFACTS
from tests.functional.browser import browser  # noqa: F401 - the fixture


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
