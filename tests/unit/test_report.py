"""The evaluation report's parts: the engine's diagnostics agree with the metrics table and
describe what was recommended; the charts and the page escape what they show and load nothing."""

from __future__ import annotations

import re

import numpy as np
import pytest

from chalicelib.engine.data import Interactions
from chalicelib.engine.diagnostics import diagnose
from chalicelib.engine.evaluation import metrics_of, recommend_lists, split
from chalicelib.engine.recipes import RECIPES
from chalicelib.engine.solution import fit
from chalicelib.report.build import render
from chalicelib.report.svg import Series, bar_chart, hbar_chart, line_chart
from chalicelib.vocabulary import SolutionVersionInfo


def _shop(seed: int = 4) -> Interactions:
    """Users who each favour one of five item groups; popular items within each group."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(300):
        group = u % 5
        for t in range(int(rng.integers(2, 40))):
            item = group * 40 + min(int(rng.exponential(6)), 39)
            rows.append((f"u{u}", f"i{item}", "purchase", None, float(1_700_000_000 + u * 100 + t)))
    return Interactions.from_rows(rows)


def _lists(data: Interactions) -> tuple[list[list[int]], object]:
    parts = split(data)
    model = fit("popularity-count", RECIPES["popularity-count"].Params(), parts.train)
    return recommend_lists(model.recommend_indices, parts), parts


def test_diagnostics_agree_with_the_metrics_table_at_5_10_and_25() -> None:
    data = _shop()
    parts = split(data)
    model = fit("user-personalization", RECIPES["user-personalization"].Params(), parts.train)
    lists = recommend_lists(model.recommend_indices, parts)
    metrics = metrics_of(lists, parts, data.n_items)
    detail = diagnose(lists, parts, data.n_items)
    at_k = detail["at_k"]
    assert at_k["k"] == list(range(1, 26))
    for k in (5, 10, 25):
        assert at_k["ndcg"][k - 1] == pytest.approx(
            metrics[f"normalized_discounted_cumulative_gain_at_{k}"], abs=1e-6
        )
        assert at_k["precision"][k - 1] == pytest.approx(metrics[f"precision_at_{k}"], abs=1e-6)
    assert at_k["coverage"][24] == pytest.approx(metrics["coverage"], abs=1e-6)
    assert at_k["coverage"] == sorted(at_k["coverage"])  # more items shown, more items covered
    assert detail["users"] == len(parts.inputs)
    assert sum(b["users"] for b in detail["by_history"]) == len(parts.inputs)


def test_a_popularity_model_recommends_only_the_head_of_the_catalogue() -> None:
    data = _shop()
    lists, parts = _lists(data)
    popularity = diagnose(lists, parts, data.n_items)["popularity"]  # type: ignore[arg-type]
    assert popularity["decile"] == list(range(1, 11))
    assert sum(popularity["catalogue_share"]) == pytest.approx(1.0)
    assert sum(popularity["recommended_share"]) == pytest.approx(1.0)
    # The same ten most popular items for everyone: all in the first decile (200 items).
    assert popularity["recommended_share"][0] == pytest.approx(1.0)
    assert popularity["mean_popularity_rank"] < 0.05


def test_charts_escape_their_text_and_draw_every_value() -> None:
    evil = '<script>alert("x")</script>'
    bars = bar_chart(
        evil, ["a", evil], [Series(evil, [0.5, 0.25]), Series("b", [None, 1.0])], y_label="y"
    )
    lines = line_chart("t", [1, 2, 3], [Series(evil, [0.1, 0.2, 0.3])], x_label="k", y_label="v")
    rows = hbar_chart("t", [evil, "b"], [0.3, None], ["#000", "#111"], x_label="NDCG@10")
    for svg in (bars, lines, rows):
        assert "<script" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert bars.count("<rect") - bars.count('width="10" height="10"') == 3  # None is not drawn
    assert lines.count("<circle") == 3


def _version(n: int, evaluation: dict[str, object], **extra: object) -> SolutionVersionInfo:
    metrics = {f"normalized_discounted_cumulative_gain_at_{k}": 0.1 * n for k in (5, 10, 25)}
    return SolutionVersionInfo(
        version_id=f"user-personalization-2026010{n}T000000-00000{n}",
        solution="user-personalization",
        recipe="user-personalization",
        status="ACTIVE",
        metrics=metrics | {"coverage": 0.3},
        counts={"interactions": 1000 + n, "users": 10, "items": 20},
        training_seconds=1.5,
        created=1_767_225_600.0 + n,
        evaluation=evaluation,
        **extra,  # type: ignore[arg-type]
    )


def test_the_page_has_no_script_no_external_load_and_marks_the_served_version() -> None:
    data = _shop()
    lists, parts = _lists(data)
    detail = diagnose(lists, parts, data.n_items)  # type: ignore[arg-type]
    knobs = {"chosen": {"chosen": {"<b>knob</b>": "<i>v</i>"}}}
    newer, older = _version(2, detail, params=knobs), _version(1, {})
    peers = {
        "written": "now",
        "datasets": [
            {
                "dataset": "shop",
                "title": "<em>t</em>",
                "interactions": 1002,
                "rows": [
                    {"model": "this engine (defaults)", "metrics": {}, "fit_seconds": 1.0},
                    {"model": "EASE tuned", "metrics": {}, "fit_seconds": 1.0},
                ],
            }
        ],
    }
    html = render(
        [newer, older],
        {"recommendations": newer.version_id},
        peers,
        peers_source="bench.json",
        provider="local",
    )
    assert "<script" not in html
    assert not re.findall(r'(?:src|href)="', html)
    assert "default-src 'none'" in html
    assert html.count("<svg") == 6  # metrics, NDCG@k, coverage@k, history, popularity, peers
    assert "<b>knob</b>" not in html and "&lt;b&gt;knob&lt;/b&gt;" in html
    assert "<em>t</em>" not in html
    assert "served</span>" in html.split(older.version_id.split("-", 2)[2])[0]
    assert "No per-k or per-history detail for 20260101T000000-000001" in html
    assert "stored 20260102T000000-000002, same data" in html


def test_without_versions_or_peers_it_says_what_to_run() -> None:
    html = render([], {}, None, peers_source="x/bench-engine.json", provider="local")
    assert "python -m chalicelib train" in html
    assert "make bench" in html and "x/bench-engine.json" in html
