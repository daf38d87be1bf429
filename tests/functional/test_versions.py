"""Solution versions from the command line: each `train` stores a version with its parameters,
counts and metrics; a campaign serves the newest unless one is deployed or pinned; `metrics --json`
speaks Personalize's metric names; too little data is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib import cli
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT

METRICS = {
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def served(campaign: str = "recommendations") -> str:
    return runtime.current().serving.health()["campaigns"][campaign]  # type: ignore[index]


def test_metrics_json_uses_personalize_names(data_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "metrics", "--json")
    body = json.loads(out)
    assert code == 0
    assert body["solutionVersionArn"] == served()
    assert set(body["metrics"]) == METRICS
    assert 0.0 < body["metrics"]["normalized_discounted_cumulative_gain_at_10"] <= 1.0


def test_each_training_is_a_version_and_deploy_switches_between_them(data_dir: Path, capsys):
    first = served()
    code, out, _ = run(capsys, "train", "--solution", "user-personalization")
    assert code == 0
    second = served()
    assert second != first and second in out

    code, out, _ = run(capsys, "versions", "--solution", "user-personalization", "--json")
    versions = json.loads(out)
    assert [v["version_id"] for v in versions] == [second, first]  # newest first
    chosen = versions[0]["params"]["chosen"]  # knobs chosen on validation users at train
    assert versions[0]["params"]["regularization"] == chosen["chosen"]["regularization"]
    assert chosen["validation_users"] > 0
    assert chosen["validation_ndcg_at_10_chosen"] >= chosen["validation_ndcg_at_10_defaults"]
    assert versions[0]["counts"]["interactions"] == 1800
    assert set(versions[0]["metrics"]) == METRICS

    code, out, _ = run(capsys, "deploy", "recommendations", "--version", first)
    assert code == 0 and served() == first
    _, out, _ = run(capsys, "metrics", "--json")
    assert json.loads(out)["solutionVersionArn"] == first
    _, out, _ = run(capsys, "metrics", "--json", "--version", second)
    assert json.loads(out)["solutionVersionArn"] == second

    code, _, err = run(capsys, "deploy", "related-items", "--version", first)
    assert code == 2 and "serves solution 'similar-items'" in err
    code, _, err = run(capsys, "deploy", "recommendations", "--version", "nope")
    assert code == 2 and "no solution version 'nope'" in err
    code, _, _ = run(capsys, "deploy", "recommendations")  # default: the latest
    assert served() == second


def test_a_pinned_version_survives_retraining(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    pinned = served()
    text = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    text = text.replace(
        '[campaigns.recommendations]\nsolution = "user-personalization"',
        f'[campaigns.recommendations]\nsolution = "user-personalization"\n'
        f'solution_version = "{pinned}"',
    )
    assert pinned in text
    config = tmp_path / "recs.toml"
    config.write_text(text)
    monkeypatch.setenv("RECS_CONFIG", str(config))
    runtime.reset()
    assert run(capsys, "train", "--solution", "user-personalization")[0] == 0
    assert served() == pinned
    assert served("rankings") != pinned  # not pinned: moved to the new version


def test_too_little_data_is_a_clear_error(empty_data_dir: Path, capsys) -> None:
    code, _, err = run(capsys, "train")
    assert code == 2
    assert "training needs at least 1000 interactions; there are 0" in err


def test_a_solution_with_perform_hpo_stores_the_tuning_in_its_version(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    text = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    marker = 'name = "user-personalization"\nrecipe = "user-personalization"\n'
    assert marker in text
    text = text.replace(
        marker,
        marker
        + "performHPO = true\n"
        + "[solutions.hpo_config.hpo_resource_config]\nmax_number_of_training_jobs = 3\n"
        + "[[solutions.hpo_config.algorithm_hyperparameter_ranges"
        + ".continuous_hyperparameter_ranges]]\n"
        + 'name = "regularization"\nmin_value = 10.0\nmax_value = 1000.0\n',
    )
    config = tmp_path / "recs.toml"
    config.write_text(text)
    monkeypatch.setenv("RECS_CONFIG", str(config))
    runtime.reset()
    assert run(capsys, "train", "--solution", "user-personalization")[0] == 0
    _, out, _ = run(capsys, "versions", "--solution", "user-personalization", "--json")
    newest = json.loads(out)[0]
    assert newest["params"]["hpo"]["trials"] == 3
    hpo = newest["params"]["hpo"]
    assert newest["params"]["regularization"] == hpo["best"]["regularization"]
    if hpo["kept_defaults"]:
        # The defaults (the lambda chosen from the data) stay a candidate even outside the
        # given range, so that tuning is never worse than them on validation.
        assert hpo["best_value"] == hpo["defaults_value"]
    else:
        assert 10.0 <= newest["params"]["regularization"] <= 1000.0


def test_versions_show_what_was_chosen_on_validation_users(data_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "versions", "--solution", "user-personalization")
    assert code == 0
    first, second = out.splitlines()[:2]
    assert "NDCG@10" in first
    assert second.strip().startswith("chosen on ") and "regularization=" in second


def test_train_keeps_the_newest_versions_and_the_served_ones_and_says_so(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each version's model file is tens of MB on a real shop: `train` removes those beyond
    RECS_KEEP_VERSIONS per solution that no campaign serves, and prints what it removed."""
    oldest = served("related-items")
    for _ in range(2):
        assert run(capsys, "train", "--solution", "similar-items")[0] == 0
    assert run(capsys, "deploy", "related-items", "--version", oldest)[0] == 0
    ranking = served("rankings")
    monkeypatch.setenv("RECS_KEEP_VERSIONS", "1")
    runtime.reset()
    workflow = runtime.current().workflow
    similar = [v.version_id for v in workflow.versions("similar-items")]
    assert len(similar) == 3 and similar[-1] == oldest
    code, out, _ = run(capsys, "train", "--solution", "personalized-ranking")
    assert code == 0
    # similar-items: the newest, and the oldest that a campaign serves; the middle one goes.
    assert [v.version_id for v in workflow.versions("similar-items")] == [similar[0], oldest]
    # personalized-ranking: its new version serves, the one before it goes.
    assert [v.version_id for v in workflow.versions("personalized-ranking")] == [served("rankings")]
    removed = sorted([similar[1], ranking])
    assert "removed 2 older solution version(s) and their model files (" in out
    assert all(v in out for v in removed) and "kept the newest 1 of each solution" in out
    models = data_dir / "models"
    assert not any((models / f"{v}.npz").exists() for v in removed)
    assert all((models / f"{v}.npz").exists() for v in (oldest, similar[0], served("rankings")))
    assert len(workflow.versions("user-personalization")) == 1  # untouched
