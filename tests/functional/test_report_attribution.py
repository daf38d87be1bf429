"""The report's attribution section on a generated history: the very figures `python -m
chalicelib attribution` prints, per solution version and per Braze campaign; a clear word when
nothing was served or no Currents event arrived; campaign names chosen by someone hostile shown
as text; and the served report's way back to the preview."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import cli
from tests.attribution_support import HOSTILE, hostile_shop, keep, shop
from tests.functional.test_report_route import BASIC

Rows = dict[str, list[str]]


class _Tables(HTMLParser):
    """Each table with an id: its rows' header cell (the name) and data cells, as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Rows] = {}
        self._table: Rows | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (table_id := dict(attrs).get("id")):
            self._table = self.tables.setdefault(table_id, {})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row:
            self._table[self._row[0]] = self._row[1:]
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, Rows]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _report(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "report.html"
    assert cli.main(["report", "--output", str(out), *args]) == 0
    return out.read_text(encoding="utf-8")


def _command(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert cli.main(["attribution", *args]) == 0
    return capsys.readouterr().out


def _text_rows(text: str, section: str) -> Rows:
    """The rows of one table of `attribution`'s text output (names without spaces)."""
    block = text.split(f"by {section}\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in block.splitlines()[1:]]
    return {row[0]: row[1:] for row in rows}


def _as_numbers(cells: list[str]) -> tuple[object, ...]:
    served, impressions, clicks, ctr, per_list, purchases, revenue = cells

    def pct(cell: str) -> float | None:
        return None if cell == "-" else float(cell.rstrip("%"))

    return (
        int(served), int(impressions), int(clicks), pct(ctr), pct(per_list), int(purchases),
        float(revenue),
    )  # fmt: skip


def _json_numbers(figures: dict[str, object]) -> tuple[object, ...]:
    def pct(value: object) -> float | None:
        return None if value is None else round(100 * float(value), 1)  # type: ignore[arg-type]

    return (
        figures["served"], figures["impressions"], figures["clicks"], pct(figures["ctr"]),
        pct(figures["clicks_per_list"]), figures["purchases"], figures["revenue"],
    )  # fmt: skip


def test_the_report_shows_the_figures_the_attribution_command_prints(
    empty_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep(*hostile_shop())
    data = json.loads(_command(capsys, "--json"))
    text = _command(capsys)
    tables = _tables(_report(tmp_path))
    by_version, by_campaign = tables["attribution-by-version"], tables["attribution-by-campaign"]
    # Every row of the command's, and no other; the total closes each table.
    assert set(by_version) == {"solution version", *data["by_solution_version"], "total"}
    assert set(by_campaign) == {"Braze campaign", *data["by_campaign"], "total"}
    assert list(by_version)[-1] == list(by_campaign)[-1] == "total"
    # The cells the command prints, character for character (version names are short)...
    printed = _text_rows(text, "solution version")
    printed["total"] = text.strip().splitlines()[-1].split()[1:]  # once, after both tables
    for name, cells in by_version.items():
        if name != "solution version":
            assert cells == printed[name], name
    # ...and every figure equal to its JSON, hostile campaigns' included.
    for name, figures in [*data["by_campaign"].items(), ("total", data["total"])]:
        assert _as_numbers(by_campaign[name]) == _json_numbers(figures), name
    # The known rates of the generated history, as a reader sees them.
    assert by_version["v1"] == ["400", "400", "40", "10.0%", "10.0%", "10", "200.00"]
    assert by_campaign["cmp-B"][3] == "20.0%" and by_version["fallback"][3] == "-"
    assert by_campaign[HOSTILE[0]][0] == "20"


def test_a_look_back_with_nothing_served_says_so(
    empty_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep(*shop())  # three days old
    html = _report(tmp_path, "--days", "1")
    assert "0 list(s) served in the last 1 days" in capsys.readouterr().out
    assert "<p id=attribution-empty>No recommendation list was served in the last 1 days" in html
    assert "attribution-by-version" not in html
    assert json.loads(_command(capsys, "--days", "1", "--json"))["total"]["served"] == 0


def test_lists_served_without_currents_are_counted_and_the_rest_explained(
    empty_data_dir: Path, tmp_path: Path
) -> None:
    served, _ = shop()
    keep(served, [])
    html = _report(tmp_path)
    assert "<p id=attribution-no-currents><strong>No Braze Currents event was imported" in html
    assert "python -m chalicelib import currents PATH" in html
    total = _tables(html)["attribution-by-version"]["total"]
    assert total == ["700", "0", "0", "-", "0.0%", "0", "0.00"]
    assert "<svg" not in html  # no impressions: no click-through rate to draw


def test_hostile_campaign_names_are_text_in_the_report_and_the_terminal(
    empty_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep(*hostile_shop())
    html = _report(tmp_path)
    assert "<script" not in html and "<img" not in html and "<a id=evil" not in html
    assert "<h1 id=forged>" not in html and not re.findall(r'(?:src|href)="', html)
    assert "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;" in html
    text = _command(capsys)
    assert "\x1b" not in text and "\\x1b[2J\\x1b[31mred & bold" in text


def test_the_served_report_shows_attribution_and_links_back_to_the_preview(
    client: Client,
) -> None:
    keep(*shop())
    html = client.http.get("/report", headers=BASIC).body.decode()
    assert '<nav id="console" aria-label="Console"><a id="preview-link" href="preview">' in html
    assert _tables(html)["attribution-by-version"]["v2"][2] == "40"  # clicks
    preview = client.http.get("/preview", headers=BASIC)
    assert preview.status_code == 200  # where the link leads
