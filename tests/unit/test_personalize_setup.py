"""`setup`, `train`, `metrics` and `deploy` on AWS against the in-memory control plane: the
configuration becomes Personalize resources once, and a second run creates nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import cli
from chalicelib.config import ConfigError, ProjectConfig, load_config
from chalicelib.providers.personalize import setup as aws_setup
from chalicelib.providers.personalize import training as aws_training
from chalicelib.providers.personalize.shapes import RECIPE_ARNS
from chalicelib.seam import runtime
from chalicelib.settings import Settings
from chalicelib.vocabulary import ProviderError, SetupReport
from tests.personalize_control import METRICS, PREFIX, FakePersonalize

CONFIG = """
[dataset_group]
name = "shop"

[[solutions]]
name = "up"
recipe = "user-personalization"
perform_auto_training = false
performHPO = true
[solutions.hyperparameters]
hidden_dimension = 64
max_user_history_length_percentile = 0.99
exploration_weight = 0.3
regularization = 200.0
[solutions.hpo_config.hpo_resource_config]
max_number_of_training_jobs = 4
max_parallel_training_jobs = 2
[[solutions.hpo_config.algorithm_hyperparameter_ranges.integer_hyperparameter_ranges]]
name = "bptt"
min_value = 2
max_value = 32
[[solutions.hpo_config.algorithm_hyperparameter_ranges.categorical_hyperparameter_ranges]]
name = "recency_mask"
values = ["true", "false"]

[[solutions]]
name = "sims"
recipe = "similar-items"

[campaigns.recommendations]
solution = "up"
min_tps = 2

[campaigns.related-items]
solution = "sims"

[campaigns.rankings]
solution = "up"

[filters]
exclude-purchased = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
"""


def config(text: str = CONFIG) -> ProjectConfig:
    import tomllib

    return ProjectConfig.model_validate(tomllib.loads(text))


@pytest.fixture
def control(aws_env: None) -> Iterator[FakePersonalize]:
    fake = FakePersonalize()
    yield fake
    assert fake.violations == [], fake.violations


def run(cfg: ProjectConfig) -> SetupReport:
    return aws_setup.setup(cfg, poll_seconds=0)


def actions(report: SetupReport) -> dict[tuple[str, str], str]:
    return {(s.kind, s.name): s.action for s in report.steps}


def test_first_setup_creates_everything_and_waits(control: FakePersonalize) -> None:
    report = run(config())
    got = actions(report)
    assert got[("dataset group", "shop")] == "created"
    assert got[("event tracker", "shop-events")] == "created"
    assert got[("filter", "shop-exclude-purchased")] == "created"
    assert got[("solution", "shop-up")] == "created"
    assert got[("solution", "shop-sims")] == "created"
    assert sorted(k[1] for k in got if k[0] == "dataset") == [
        "shop-interactions",
        "shop-items",
        "shop-users",
    ]
    # No trained version yet: the campaigns wait for `train`; ranking needs its own recipe.
    assert got[("campaign", "shop-recommendations")] == "pending"
    assert got[("campaign", "shop-rankings")] == "skipped"
    assert report.settings["RECS_DATASET_GROUP_ARN"] == f"{PREFIX}:dataset-group/shop"
    assert report.settings["RECS_TRACKING_ID"].startswith("tracking-")
    # Every created resource was described until ACTIVE.
    assert all(
        r["status"] == "ACTIVE" for kind in control.resources.values() for r in kind.values()
    )


def test_the_solution_request_carries_recipe_hyperparameters_and_hpo(
    control: FakePersonalize,
) -> None:
    run(config())
    solution = control.resources["solution"][f"{PREFIX}:solution/shop-up"]
    assert solution["recipeArn"] == "arn:aws:personalize:::recipe/aws-user-personalization"
    assert solution["performHPO"] is True
    assert solution["performAutoTraining"] is False
    cfg = solution["solutionConfig"]
    assert cfg["algorithmHyperParameters"]["hidden_dimension"] == "64"
    assert "regularization" not in cfg["algorithmHyperParameters"]  # the local engine's knob
    assert cfg["featureTransformationParameters"] == {"max_user_history_length_percentile": "0.99"}
    assert cfg["hpoConfig"] == {
        "hpoResourceConfig": {"maxNumberOfTrainingJobs": "4", "maxParallelTrainingJobs": "2"},
        "algorithmHyperParameterRanges": {
            "integerHyperParameterRanges": [{"name": "bptt", "minValue": 2, "maxValue": 32}],
            "categoricalHyperParameterRanges": [
                {"name": "recency_mask", "values": ["true", "false"]}
            ],
        },
    }
    schema = next(r for r in control.resources["schema"].values() if "interactions" in r["name"])
    fields = json.loads(schema["schema"])["fields"]
    assert {"name": "EVENT_VALUE", "type": ["null", "float"]} in fields


def test_a_second_setup_creates_nothing(control: FakePersonalize) -> None:
    run(config())
    created = control.creates()
    report = run(config())
    assert control.creates() == created
    assert {s.action for s in report.steps} <= {"exists", "pending", "skipped"}
    assert report.count("exists") == 11  # group, 3 schemas, 3 datasets, tracker, filter, 2 sol.


def test_a_changed_filter_expression_is_reported_and_left_alone(
    control: FakePersonalize,
) -> None:
    run(config())
    changed = CONFIG.replace('IN ("purchase")', 'IN ("purchase", "return")')
    report = run(config(changed))
    step = next(s for s in report.steps if s.kind == "filter")
    assert step.action == "changed"
    assert '"return"' in step.detail and "DeleteFilter" in step.detail
    arn = f"{PREFIX}:filter/shop-exclude-purchased"
    assert "return" not in control.resources["filter"][arn]["filterExpression"]
    assert control.calls["CreateFilter"] == 1


def test_changed_hyperparameters_are_reported(control: FakePersonalize) -> None:
    run(config())
    report = run(config(CONFIG.replace("hidden_dimension = 64", "hidden_dimension = 128")))
    step = next(s for s in report.steps if s.name == "shop-up")
    assert step.action == "changed"
    assert "hidden_dimension: '64' -> '128'" in step.detail
    assert control.calls["CreateSolution"] == 2  # the first run's two, nothing more


def test_a_changed_schema_becomes_a_new_schema_and_updates_the_dataset(
    control: FakePersonalize,
) -> None:
    run(config())
    with_category = (
        CONFIG + '\n[schemas.items]\nITEM_ID = "string"\nCATEGORY = "string categorical"\n'
    )
    report = run(config(with_category))
    got = actions(report)
    assert got[("dataset", "shop-items")] == "updated"
    assert got[("dataset", "shop-users")] == "exists"
    assert [k for k, a in got.items() if k[0] == "schema" and a == "created"] != []


def test_train_then_setup_creates_campaigns_with_min_tps(control: FakePersonalize) -> None:
    cfg = config()
    run(cfg)
    infos = aws_training.train(Settings(), cfg, None, None, poll_seconds=0)
    assert [i.solution for i in infos] == ["up", "sims"]
    assert dict(infos[0].metrics) == METRICS
    assert infos[0].training_seconds == 1800.0
    campaigns = control.resources["campaign"]
    recs = campaigns[f"{PREFIX}:campaign/shop-recommendations"]
    assert recs["minProvisionedTPS"] == 2
    assert recs["campaignConfig"] == {"itemExplorationConfig": {"explorationWeight": "0.3"}}
    assert recs["solutionVersionArn"] == infos[0].version_id
    # A later setup finds them and changes nothing; a new min TPS is updated in place.
    report = run(cfg)
    assert actions(report)[("campaign", "shop-recommendations")] == "exists"
    assert report.settings["RECS_CAMPAIGN_ARN"] == f"{PREFIX}:campaign/shop-recommendations"
    report = run(config(CONFIG.replace("min_tps = 2", "min_tps = 5")))
    assert actions(report)[("campaign", "shop-recommendations")] == "updated"
    assert recs["minProvisionedTPS"] == 5
    assert control.calls["CreateCampaign"] == 2


def test_retraining_moves_the_campaign_to_the_new_version(control: FakePersonalize) -> None:
    cfg = config()
    run(cfg)
    first = aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)[0]
    second = aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)[0]
    recs = control.resources["campaign"][f"{PREFIX}:campaign/shop-recommendations"]
    assert first.version_id != second.version_id
    assert recs["solutionVersionArn"] == second.version_id
    assert control.calls["UpdateCampaign"] == 1


def test_metrics_and_versions_through_the_provider(
    control: FakePersonalize, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("RECS_CONFIG", str(path))
    monkeypatch.setenv("RECS_CAMPAIGN_ARN", "")
    cfg = load_config(path)
    run(cfg)
    provider = runtime.current().workflow
    assert provider.metrics("up") is None  # nothing trained yet
    trained = aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)[0]
    info = provider.metrics("up")
    assert info is not None and info.version_id == trained.version_id
    assert dict(info.metrics) == METRICS
    assert [v.version_id for v in provider.versions("up")] == [trained.version_id]
    with pytest.raises(ValueError, match="not a version of solution"):
        provider.deploy("related-items", trained.version_id)


def test_train_without_setup_says_what_to_run(control: FakePersonalize) -> None:
    with pytest.raises(ProviderError, match="python -m chalicelib setup"):
        aws_training.train(Settings(), config(), None, None, poll_seconds=0)


def test_cli_setup_prints_the_stage_settings(
    control: FakePersonalize, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG)
    assert cli.main(["setup", "--config", str(path), "--poll-seconds", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["RECS_DATASET_GROUP_ARN"] == f"{PREFIX}:dataset-group/shop"
    assert {s["action"] for s in out["steps"]} >= {"created", "pending"}


def test_a_bad_filter_expression_stops_setup_with_personalizes_message(
    control: FakePersonalize, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    control.refuse("CreateFilter", "InvalidInputException", "Expression is invalid near 'WHER'")
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG)
    assert cli.main(["setup", "--config", str(path), "--poll-seconds", "0"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("setup: ") and "near 'WHER'" in err
    assert "Traceback" not in err


def test_local_setup_checks_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECS_PROVIDER", "local")
    monkeypatch.setenv("RECS_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG)
    assert cli.main(["setup", "--config", str(path)]) == 0
    checked = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert ["checked", "filter", "exclude-purchased"] in checked
    broken = tmp_path / "broken.toml"
    broken.write_text(CONFIG.replace('IN ("purchase")', 'IN ("purchase"'))
    assert cli.main(["setup", "--config", str(broken)]) == 2
    lines = capsys.readouterr().err.splitlines()  # the expression's caret under its own line
    assert lines[0].startswith(f"setup: {broken}: filter 'exclude-purchased': syntax"), lines
    runtime.reset()


def test_a_pinned_version_is_deployed_and_a_local_pin_ignored(control: FakePersonalize) -> None:
    local_pin = CONFIG.replace(
        'solution = "up"\nmin_tps = 2',
        'solution = "up"\nmin_tps = 2\nsolution_version = "up-local-1"',
    )
    cfg = config(local_pin)
    run(cfg)
    first = aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)[0]
    second = aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)[0]
    recs = control.resources["campaign"][f"{PREFIX}:campaign/shop-recommendations"]
    assert recs["solutionVersionArn"] == second.version_id  # the local pin means "newest" here
    pinned = config(local_pin.replace("up-local-1", first.version_id))
    report = run(pinned)
    assert actions(report)[("campaign", "shop-recommendations")] == "updated"
    assert recs["solutionVersionArn"] == first.version_id


def test_a_dry_run_reports_and_changes_nothing(control: FakePersonalize) -> None:
    plan = aws_setup.setup(config(), poll_seconds=0, dry_run=True)
    assert control.creates() == 0
    assert actions(plan)[("dataset group", "shop")] == "would create"
    assert actions(plan)[("filter", "shop-exclude-purchased")] == "would create"
    assert actions(plan)[("campaign", "shop-recommendations")] == "pending"
    cfg = config()
    run(cfg)
    aws_training.train(Settings(), cfg, "up", None, poll_seconds=0)
    calls = dict(control.calls)
    changed = CONFIG.replace("min_tps = 2", "min_tps = 3").replace('("purchase")', '("return")')
    plan = aws_setup.setup(config(changed), poll_seconds=0, dry_run=True)
    assert actions(plan)[("campaign", "shop-recommendations")] == "would update"
    assert actions(plan)[("filter", "shop-exclude-purchased")] == "changed"
    assert actions(plan)[("dataset", "shop-items")] == "exists"
    mutating = ("Create", "Update", "Delete")
    assert {k: v for k, v in control.calls.items() if k.startswith(mutating)} == {
        k: v for k, v in calls.items() if k.startswith(mutating)
    }


def test_cli_train_before_setup_says_what_to_run(
    control: FakePersonalize,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("RECS_CONFIG", str(path))
    runtime.reset()
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("train: ") and "python -m chalicelib setup" in err


def test_the_default_configuration_gives_every_route_its_campaign(
    control: FakePersonalize,
) -> None:
    """The shipped recs.toml, trained on Personalize: `/rankings` gets a campaign of a
    personalized-ranking solution (GetPersonalizedRanking needs that recipe), not a skip."""
    cfg = load_config(Settings().config)
    aws_setup.setup(cfg, poll_seconds=0)
    aws_training.train(Settings(), cfg, poll_seconds=0)
    report = run(cfg)
    campaigns = {s.name: s.action for s in report.steps if s.kind == "campaign"}
    assert campaigns == {
        "braze-shop-recommendations": "exists",
        "braze-shop-related-items": "exists",
        "braze-shop-rankings": "exists",
    }
    assert report.settings["RECS_RANKING_CAMPAIGN_ARN"] == f"{PREFIX}:campaign/braze-shop-rankings"
    ranking = control.resources["campaign"][report.settings["RECS_RANKING_CAMPAIGN_ARN"]]
    solution = control.resources["solution"][ranking["solutionArn"]]
    assert solution["recipeArn"] == RECIPE_ARNS["personalized-ranking"]


EXCLUDE_PURCHASED = "exclude-purchased = 'EXCLUDE"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (EXCLUDE_PURCHASED, '"top.sellers" = \'EXCLUDE', "filters.top.sellers"),
        (EXCLUDE_PURCHASED, f"{'f' * 59} = 'EXCLUDE", "filters.fff"),
        ('name = "shop"', f'name = "{"s" * 42}"', "dataset_group.name"),
    ],
)
def test_names_personalize_refuses_are_refused_when_the_file_loads(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    """Filter names follow Personalize's name pattern and every derived name (the dataset
    group's prefix included) fits in 63 characters: refused with the key, never cut."""
    path = tmp_path / "recs.toml"
    path.write_text(CONFIG.replace(old, new))
    with pytest.raises(ConfigError, match=where):
        load_config(path)


def test_a_long_dataset_group_name_is_never_cut_into_a_colliding_schema_name(
    control: FakePersonalize,
) -> None:
    """41 characters is the longest group name whose every derived name fits; each created
    resource then keeps its whole name (the schema's hash included)."""
    group = "g" * 41
    run(config(CONFIG.replace('name = "shop"', f'name = "{group}"')))
    names = [r["name"] for kind in control.resources.values() for r in kind.values() if "name" in r]
    assert all(name.startswith(group) for name in names)
    schemas = [n for n in names if "-interactions-" in n]
    assert len(schemas) == 1 and len(schemas[0]) == 63
