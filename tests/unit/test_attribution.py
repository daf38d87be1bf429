"""Attribution on a generated history whose click and purchase rates are known: the figures per
solution version and per Braze campaign come out exactly, through the local loop and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.attribution import attribute
from chalicelib.cli import main
from chalicelib.seam import runtime
from tests.attribution_support import shop


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
