"""The console around the pages: the preview page shows which version each campaign serves and
links to `GET /report`, the evaluation report served live (same key, Basic challenge, a policy
that allows no script and no request), and the report follows a deploy at once."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import cli
from chalicelib.seam import runtime
from tests.conftest import DEV_KEY
from tests.functional.support import assert_error, get

BASIC = {"authorization": "Basic " + base64.b64encode(f"analyst:{DEV_KEY}".encode()).decode()}


def _served(client: Client) -> dict[str, str]:
    campaigns = json.loads(get(client, "/health").body)["campaigns"]
    assert isinstance(campaigns, dict) and len(campaigns) == 3
    return campaigns


def test_the_preview_page_shows_what_each_campaign_serves_and_links_the_report(
    client: Client,
) -> None:
    text = client.http.get("/preview", headers=BASIC).body.decode()
    console = text[text.index('<nav id="console"') : text.index("</nav>")]
    for campaign, version in _served(client).items():
        assert f"<code>{campaign}</code> serves <code>{version}</code>" in console
    assert '<a id="report-link" href="report">' in console


def test_the_report_is_served_with_the_key_and_allows_no_script(
    client: Client, data_dir: Path
) -> None:
    response = client.http.get("/report")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    response = client.http.get("/report", headers=BASIC)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # none at all: default-src 'none' forbids every script
    html = response.body.decode()
    assert "<script" not in html
    assert html.count("<span class=served>served</span>") == 3
    for campaign, version in _served(client).items():
        assert f"<td>{campaign}</td><td><code>{version}</code></td>" in html
    assert len(re.findall(r"<svg ", html)) >= 15
    assert "No benchmark results at <code>RECS_DATA_DIR/bench-engine.json</code>" in html
    assert str(data_dir) not in html  # the server's own paths stay its own


def test_the_report_follows_a_deploy(client: Client, data_dir: Path) -> None:
    before = _served(client)["related-items"]
    assert cli.main(["train", "--solution", "similar-items"]) == 0
    runtime.reset()
    after = _served(client)["related-items"]
    assert after != before
    html = client.http.get("/report", headers=BASIC).body.decode()
    assert f"<td>related-items</td><td><code>{after}</code></td>" in html
    assert "2 version(s), newest first" in html


def test_without_the_pages_installed_the_report_says_where_it_runs(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "chalicelib.api.preview.page", None)  # as on Lambda
    monkeypatch.delitem(sys.modules, "chalicelib.api.preview.console", raising=False)
    message = assert_error(client.http.get("/report", headers=BASIC), 404, "not_found")
    assert "python -m chalicelib serve" in message
