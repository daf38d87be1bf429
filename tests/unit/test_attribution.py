"""Attribution on a generated history whose click and purchase rates are known: the figures per
solution version and per Braze campaign come out exactly, through the local loop and the CLI,
and the SQL computation gives to the last digit what the Python pass it replaced gave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.attribution import attribute
from chalicelib.cli import main
from chalicelib.seam import runtime
from chalicelib.vocabulary import Engagement, ServedList
from tests.attribution_support import (
    NOW,
    generated,
    generated_totals,
    reference_attribute,
    shop,
)


def test_the_figures_of_a_known_history_come_out_exactly() -> None:
    served, engaged = shop()
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
    served, engaged = shop()
    v1 = attribute(served, engaged, window_hours=48).as_dict()["by_solution_version"]["v1"]
    assert (v1["purchases"], v1["revenue"]) == (11, 299.0)


def test_the_command_reports_what_the_local_loop_kept(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served, engaged = shop()
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


def _keep_generated(lists: int) -> None:
    loop = runtime.current().loop
    engaged: list[Engagement] = []
    for record in generated(lists):
        if isinstance(record, ServedList):
            loop.record_served(record)
        else:
            engaged.append(record)
    loop.record_engagements(engaged)


@pytest.mark.parametrize("window_hours", [0.5, 24.0, 48.0])
def test_the_local_loop_sums_what_the_python_pass_summed(
    empty_data_dir: Path, window_hours: float
) -> None:
    _keep_generated(2000)  # late purchases 25 h after their click, ties, repeats, ghosts
    loop = runtime.current().loop
    got = loop.attribution(0, window_hours).as_dict()
    assert got == reference_attribute(*loop.history(0), window_hours).as_dict()
    totals = generated_totals(2000)
    if window_hours == 0.5:  # the purchases an hour after the click are out of it
        totals["purchases"] = 2000 // 200
    if window_hours == 48.0:  # and the ones 25 h after it in
        totals["purchases"] += 2000 // 20
    assert {k: got["total"][k] for k in totals} == totals
    campaigns = got["by_campaign"]
    steps = sum(v["served"] for k, v in campaigns.items() if k.startswith("step-"))
    assert steps == sum(1 for n in range(2000) if n % 12 == 5)  # a Canvas step, no campaign
    assert campaigns["(no campaign)"]["served"] == sum(1 for n in range(2000) if n % 12 == 11)
    assert got["total"]["revenue"] > 0 and got["by_solution_version"]["fallback"]["clicks"] == 0


def test_a_look_back_cuts_lists_and_engagements_alike(
    empty_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _keep_generated(2000)
    loop = runtime.current().loop
    since = NOW + 60.0 * 1000 - 30  # half the lists: clicks on the older half no longer count
    got = loop.attribution(since, 24).as_dict()
    assert got == reference_attribute(*loop.history(since), 24).as_dict()
    assert got["total"]["served"] == 1000
    assert main(["attribution", "--json"]) == 0  # the command: the same computation, all of it
    shown = json.loads(capsys.readouterr().out)
    assert shown["total"] == loop.attribution(0, 24).as_dict()["total"]


def test_a_history_given_whole_matches_the_python_pass() -> None:
    records = list(generated(1000, items=25))
    served = [r for r in records if isinstance(r, ServedList)]
    engaged = [r for r in records if isinstance(r, Engagement)]
    # A list served twice under one id counts once, and a Currents record delivered twice is
    # credited once: what the personalize loop's scan may hold.
    served.append(served[0])
    engaged += [e for e in engaged if e.kind == "purchase"][:5]
    got = attribute(served, engaged, 24).as_dict()
    assert got == reference_attribute(served, engaged, 24).as_dict()
    assert got["total"]["purchases"] == generated_totals(1000)["purchases"]
