"""Attribution on a generated history whose click and purchase rates are known: the figures per
solution version and per Braze campaign come out exactly, through the local loop and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chalicelib.attribution import attribute
from chalicelib.cli import main
from chalicelib.seam import runtime
from chalicelib.vocabulary import Engagement, ServedList

NOW = time.time() - 3 * 86_400  # three days ago: inside the default 30-day look-back
HOUR = 3600.0


def _history(
    version: str | None,
    campaign: str | None,
    lists: int,
    *,
    ctr: float,
    conversion: float,
    price: float,
) -> tuple[list[ServedList], list[Engagement]]:
    """`lists` lists of 4 items, each shown once (when a campaign shows cards), a click on every
    1/ctr-th, and a purchase of the clicked item an hour later on every 1/conversion-th click."""
    served, engaged = [], []
    tag = version or "fb"
    clicks = 0
    for n in range(lists):
        user, rid, at = f"{tag}-u{n}", f"{tag}-r{n}", NOW + n
        items = [f"{tag}-i{n}-{k}" for k in range(4)]
        served.append(
            ServedList(rid, user, items, "recommendations", "personalized", at, version, campaign)
        )
        if campaign:
            engaged.append(
                Engagement(f"{rid}-imp", user, "impression", at + 1, None, rid, campaign)
            )
        if n % round(1 / ctr) == 0:
            clicks += 1
            engaged.append(Engagement(f"{rid}-clk", user, "click", at + 2, items[1], rid, campaign))
            if (clicks - 1) % round(1 / conversion) == 0:
                engaged.append(
                    Engagement(f"{rid}-buy", user, "purchase", at + HOUR, items[1], value=price)
                )
    return served, engaged


def _shop() -> tuple[list[ServedList], list[Engagement]]:
    served, engaged = [], []
    for version, campaign, lists, ctr, conversion, price in (
        ("v1", "cmp-A", 400, 0.10, 0.25, 20.0),
        ("v2", "cmp-B", 200, 0.20, 0.5, 5.0),
        (None, None, 100, 0.05, 1.0, 0.0),
    ):
        s, e = _history(version, campaign, lists, ctr=ctr, conversion=conversion, price=price)
        served += s
        engaged += e
    # What must not count: a purchase a day and a half after the click, one of an item the
    # list did not hold, one before the click, one of a user who never clicked, a click on a
    # list nobody served, and the same impression twice.
    engaged += [
        Engagement("late", "v1-u0", "purchase", NOW + 36 * HOUR, "v1-i0-1", value=99.0),
        Engagement("other", "v1-u10", "purchase", NOW + 10 + HOUR, "elsewhere", value=99.0),
        Engagement("early", "v1-u20", "purchase", NOW + 19, "v1-i20-1", value=99.0),
        Engagement("stranger", "v1-u1", "purchase", NOW + 1 + HOUR, "v1-i1-1", value=99.0),
        Engagement("ghost", "v1-u3", "click", NOW + 5, "x", "nobody-served-this", "cmp-A"),
    ]
    return served, engaged


def test_the_figures_of_a_known_history_come_out_exactly() -> None:
    served, engaged = _shop()
    result = attribute(served, engaged, window_hours=24).as_dict()
    v1, v2, fb = (result["by_solution_version"][k] for k in ("v1", "v2", "fallback"))
    assert (v1["served"], v1["impressions"], v1["clicks"], v1["purchases"]) == (400, 400, 40, 10)
    assert (v1["ctr"], v1["conversion"], v1["revenue"]) == (0.1, 0.25, 200.0)
    assert (v2["served"], v2["clicks"], v2["ctr"], v2["purchases"], v2["revenue"]) == (
        200,
        40,
        0.2,
        20,
        100.0,
    )
    assert (fb["served"], fb["impressions"], fb["clicks"], fb["ctr"]) == (100, 0, 5, None)
    assert fb["clicks_per_list"] == 0.05
    assert result["by_campaign"]["cmp-A"] == v1 and result["by_campaign"]["cmp-B"] == v2
    assert result["by_campaign"]["(no campaign)"]["served"] == 100
    assert result["total"]["purchases"] == 10 + 20 + 5 and result["total"]["revenue"] == 300.0


def test_a_longer_window_takes_the_late_purchase() -> None:
    served, engaged = _shop()
    v1 = attribute(served, engaged, window_hours=48).as_dict()["by_solution_version"]["v1"]
    assert (v1["purchases"], v1["revenue"]) == (11, 299.0)


def test_the_command_reports_what_the_local_loop_kept(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served, engaged = _shop()
    loop = runtime.current().loop
    for s in served:
        loop.record_served(s)
    assert loop.record_engagements(engaged) == len(engaged)
    assert loop.record_engagements(engaged) == 0  # Currents' repeats count once
    assert main(["attribution", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by_solution_version"]["v1"]["purchases"] == 10
    assert report["by_campaign"]["cmp-B"]["ctr"] == 0.2
    assert main(["attribution", "--days", "1", "--json"]) == 0  # all of it older than a day
    assert json.loads(capsys.readouterr().out)["total"]["served"] == 0
    assert main(["attribution"]) == 0
    text = capsys.readouterr().out
    assert "cmp-A" in text and "10.0%" in text and "200.00" in text
