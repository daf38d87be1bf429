"""`python -m chalicelib batch` on the local provider: Personalize's three batch-inference formats,
filters, per-line errors kept in place, and the printed summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.providers.local.store import LocalStore
from chalicelib.seam import runtime
from tests.configs import with_filter
from tests.functional.support import category


def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[Any], *options: str
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    src, out = tmp_path / "users.jsonl", tmp_path / "recs.jsonl"
    src.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    capsys.readouterr()
    code = cli.main(["batch", "--input", str(src), "--output", str(out), *options])
    summary = json.loads(capsys.readouterr().out) if code in (0, 1) else {}
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return code, records, summary


def test_user_personalization_lines_get_items_and_scores_and_a_summary(data_dir, tmp_path, capsys):
    users = [{"userId": "u2"}, {"userId": "u4"}, {"userId": "u2"}]
    code, records, summary = run(tmp_path, capsys, users, "--num-results", "10")
    assert code == 0
    assert [r["input"] for r in records] == users
    for record in records:
        assert record["error"] is None
        items, scores = record["output"]["recommendedItems"], record["output"]["scores"]
        assert len(items) == len(set(items)) == 10 == len(scores)
        assert scores == sorted(scores, reverse=True)
    # u2 prefers toys, u4 garden (CATEGORIES[n % 3]).
    assert sum(category(i) == "toys" for i in records[0]["output"]["recommendedItems"]) >= 7
    assert sum(category(i) == "kitchen" for i in records[1]["output"]["recommendedItems"]) >= 7
    assert summary["lines"] == summary["answered"] == 3
    assert summary["errors"] == 0
    assert summary["users"] == 2
    assert summary["items_per_line_min"] == summary["items_per_line_max"] == 10
    assert summary["catalogue_items"] == 120
    assert 0 < summary["coverage"] == round(summary["distinct_items"] / 120, 4) <= 0.1667


def test_similar_items_lines_get_related_items_without_scores(data_dir, tmp_path, capsys):
    code, records, summary = run(tmp_path, capsys, [{"itemId": "toys-3"}], "--num-results", "5")
    assert code == 0
    output = records[0]["output"]
    assert "scores" not in output
    assert len(output["recommendedItems"]) == 5
    assert "toys-3" not in output["recommendedItems"]
    assert sum(category(i) == "toys" for i in output["recommendedItems"]) >= 4
    assert summary["items"] == 1


def test_ranking_lines_rerank_the_given_list_with_scores(data_dir, tmp_path, capsys):
    given = ["garden-1", "kitchen-1", "toys-1", "garden-2"]
    code, records, _ = run(tmp_path, capsys, [{"userId": "u2", "itemList": given}])
    assert code == 0
    output = records[0]["output"]
    assert sorted(output["recommendedItems"]) == sorted(given)
    assert output["recommendedItems"][0] == "toys-1"  # u2 prefers toys
    assert output["scores"] == sorted(output["scores"], reverse=True)


def test_bad_lines_are_reported_in_place_and_counted_never_dropped(data_dir, tmp_path, capsys):
    lines = [
        {"userId": "u1"},
        '{"userId": "u2"',  # bad JSON
        {},  # no field
        {"userId": 5},
        {"userId": "nobody"},
        {"itemId": "no-such-item"},
        {"userId": "u2", "itemList": ["toys-1", "nope"]},
        "[1, 2]",
        {"userId": "u3"},
    ]
    code, records, summary = run(tmp_path, capsys, lines, "--num-results", "3")
    assert code == 1
    assert len(records) == len(lines)
    assert records[0]["error"] is None
    assert records[-1]["error"] is None
    assert records[1]["input"] == '{"userId": "u2"'
    assert records[1]["error"].startswith("bad JSON")
    errors = [r["error"] for r in records[1:-1]]
    assert all(errors)
    assert all(r["output"] is None for r in records[1:-1])
    assert "unknown userId 'nobody'" in errors[3]
    assert "unknown itemId 'no-such-item'" in errors[4]
    assert "nope" in errors[5]
    assert summary["lines"] == 9
    assert summary["answered"] == 2
    assert summary["errors"] == 7
    assert len(summary["first_errors"]) == 7


def test_a_filter_applies_to_every_line(data_dir, tmp_path, capsys):
    purchased = sorted(i for i, t, _ in LocalStore(data_dir).user_events("u2") if t == "purchase")
    line = {"userId": "u2", "itemList": [*purchased[:2], "garden-30", "kitchen-30"]}
    code, plain, _ = run(tmp_path, capsys, [line])
    assert code == 0
    assert set(plain[0]["output"]["recommendedItems"]) == set(line["itemList"])
    code, filtered, _ = run(tmp_path, capsys, [line], "--filter", "exclude-purchased")
    assert code == 0
    assert filtered[0]["output"]["recommendedItems"] == [
        i for i in plain[0]["output"]["recommendedItems"] if i not in purchased
    ]


def _in_category(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's recs.toml plus a filter on the test shop's CATEGORY, for this test."""
    config = with_filter(
        folder, "in-category", "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    )
    monkeypatch.setenv("RECS_CONFIG", str(config))
    runtime.reset()


def test_filter_values_from_the_command_or_each_line(data_dir, tmp_path, capsys, monkeypatch):
    _in_category(tmp_path, monkeypatch)
    lines = [
        {"userId": "u2"},
        {"userId": "u2", "filterValues": {"CATEGORY": '"kitchen","garden"'}},
        {"userId": "u2", "filterValues": {"CATEGORY": 7}},
    ]
    opts = ["--filter", "in-category", "--filter-value", "CATEGORY=garden", "--num-results", "8"]
    code, records, summary = run(tmp_path, capsys, lines, *opts)
    assert code == 1
    assert {category(i) for i in records[0]["output"]["recommendedItems"]} == {"garden"}
    second = {category(i) for i in records[1]["output"]["recommendedItems"]}
    assert "kitchen" in second  # the line's own values replace the command's
    assert second <= {"kitchen", "garden"}
    assert "must be a string" in records[2]["error"]
    assert summary["errors"] == 1


def test_solution_option_fixes_the_recipe_like_a_personalize_job(data_dir, tmp_path, capsys):
    lines = [{"itemId": "garden-2"}, {"userId": "u1"}]
    code, records, _ = run(tmp_path, capsys, lines, "--solution", "similar-items")
    assert code == 1
    assert records[0]["error"] is None
    assert "does not answer" in records[1]["error"]
    runtime.reset()
    assert cli.main(["batch", "--input", "x", "--output", "y", "--solution", "nope"]) == 2
    assert cli.main(["batch", "--input", "x", "--output", "y", "--num-results", "0"]) == 2


def test_filter_values_without_a_filter_are_a_line_error(data_dir, tmp_path, capsys):
    lines = [{"userId": "u1", "filterValues": {"X": '"a"'}}]
    code, records, _ = run(tmp_path, capsys, lines)
    assert code == 1
    assert "no filter" in records[0]["error"]


def test_a_missing_filter_value_names_filter_values_and_the_option_not_a_query(
    data_dir, tmp_path, capsys, monkeypatch
):
    _in_category(tmp_path, monkeypatch)
    lines = [
        {"userId": "u2"},
        {"userId": "u2", "filterValues": {"OTHER": '"x"'}},
        {"userId": "u2", "filterValues": {"CATEGORY": '"garden"'}},
    ]
    code, records, summary = run(tmp_path, capsys, lines, "--filter", "in-category")
    assert code == 1 and summary["errors"] == 2
    for record in records[:2]:
        error = record["error"]
        assert "$CATEGORY" in error and "query parameter" not in error
        assert '"filterValues": {"CATEGORY": "\\"VALUE\\""}' in error
        assert "--filter-value CATEGORY=VALUE" in error
    assert {category(i) for i in records[2]["output"]["recommendedItems"]} == {"garden"}
