"""Amazon Personalize's request shapes, built from the declarative configuration: dataset schemas
(Avro), CreateSolution's parameters (recipe ARN, hyperparameters, event settings, HPO), a
campaign's config, and what differs between a wanted solution and the one Personalize has."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.config import Campaign, Solution
from chalicelib.names import personalize_name

RECIPE_ARNS = {
    "user-personalization": "arn:aws:personalize:::recipe/aws-user-personalization",
    "similar-items": "arn:aws:personalize:::recipe/aws-sims",
    "personalized-ranking": "arn:aws:personalize:::recipe/aws-personalized-ranking",
    "popularity-count": "arn:aws:personalize:::recipe/aws-popularity-count",
}
# Which of a solution's `hyperparameters` Personalize knows, and where each goes; the others
# are the local engine's own knobs and stay local.
ALGORITHM = {
    "user-personalization": {"hidden_dimension", "bptt", "recency_mask"},
    "personalized-ranking": {"hidden_dimension", "bptt", "recency_mask"},
    "similar-items": {"popularity_discount_factor", "min_cointeraction_count"},
    "popularity-count": set(),
}
FEATURIZATION = {"min_user_history_length_percentile", "max_user_history_length_percentile"}
EXPLORATION = {"exploration_weight": "explorationWeight"}
EXPLORATION["exploration_item_age_cut_off"] = "explorationItemAgeCutOff"


def avro_schema(dataset: str, fields: dict[str, str]) -> dict[str, Any]:
    """Personalize's Avro schema of a dataset from the configuration's field specs."""
    avro_fields = []
    for name, spec in fields.items():
        kind, *flags = spec.split()
        entry: dict[str, Any] = {
            "name": name,
            "type": ["null", kind] if "nullable" in flags else kind,
        }
        if "categorical" in flags:
            entry["categorical"] = True
        if "textual" in flags:
            entry["textual"] = True
        avro_fields.append(entry)
    return {
        "type": "record",
        "name": dataset.capitalize(),
        "namespace": "com.amazonaws.personalize.schema",
        "fields": avro_fields,
        "version": "1.0",
    }


def _str(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def solution_request(group_arn: str, group: str, solution: Solution) -> dict[str, Any]:
    """CreateSolution's parameters for `solution` (its Personalize-known knobs only)."""
    params = dict(solution.hyperparameters)
    config: dict[str, Any] = {}
    algorithm = {k: _str(v) for k, v in params.items() if k in ALGORITHM[solution.recipe]}
    featurization = {k: _str(v) for k, v in params.items() if k in FEATURIZATION}
    if algorithm:
        config["algorithmHyperParameters"] = algorithm
    if featurization:
        config["featureTransformationParameters"] = featurization
    if solution.event_value_threshold is not None:
        config["eventValueThreshold"] = _str(solution.event_value_threshold)
    if solution.events:
        config["eventsConfig"] = {
            "eventParametersList": [
                {
                    "eventType": e.event_type,
                    "weight": e.weight,
                    **(
                        {"eventValueThreshold": e.event_value_threshold}
                        if e.event_value_threshold is not None
                        else {}
                    ),
                }
                for e in solution.events
            ]
        }
    if solution.perform_hpo and solution.hpo_config is not None:
        config["hpoConfig"] = hpo_config(solution)
    request: dict[str, Any] = {
        "name": personalize_name(group, solution.name),
        "datasetGroupArn": group_arn,
        "recipeArn": RECIPE_ARNS[solution.recipe],
        "performHPO": solution.perform_hpo,
        "performAutoTraining": solution.perform_auto_training,
    }
    if solution.event_type:
        request["eventType"] = solution.event_type
    if config:
        request["solutionConfig"] = config
    return request


def hpo_config(solution: Solution) -> dict[str, Any]:
    """The configuration's snake-case `hpo_config` in Personalize's shape. The objective is left
    out: Personalize does not let it be configured (it optimises its own default)."""
    assert solution.hpo_config is not None
    hpo, ranges = solution.hpo_config, solution.hpo_config.algorithm_hyperparameter_ranges
    out: dict[str, Any] = {
        "hpoResourceConfig": {
            "maxNumberOfTrainingJobs": str(hpo.hpo_resource_config.max_number_of_training_jobs),
            "maxParallelTrainingJobs": str(hpo.hpo_resource_config.max_parallel_training_jobs),
        }
    }
    personalize_ranges: dict[str, list[dict[str, Any]]] = {}
    for key, items in (
        ("integerHyperParameterRanges", ranges.integer_hyperparameter_ranges),
        ("continuousHyperParameterRanges", ranges.continuous_hyperparameter_ranges),
    ):
        if items:
            personalize_ranges[key] = [
                {"name": r.name, "minValue": r.min_value, "maxValue": r.max_value} for r in items
            ]
    if ranges.categorical_hyperparameter_ranges:
        personalize_ranges["categoricalHyperParameterRanges"] = [
            {"name": r.name, "values": list(r.values)}
            for r in ranges.categorical_hyperparameter_ranges
        ]
    if personalize_ranges:
        out["algorithmHyperParameterRanges"] = personalize_ranges
    return out


def solution_differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    """What differs between a CreateSolution request and DescribeSolution's answer."""
    diffs = []
    for key in ("recipeArn", "performHPO", "eventType"):
        if want.get(key) != have.get(key) and not (
            key == "performHPO" and not want[key] and have.get(key) is None
        ):
            diffs.append(f"{key}: {have.get(key)!r} -> {want.get(key)!r}")
    want_config, have_config = want.get("solutionConfig", {}), have.get("solutionConfig", {})
    for key in ("algorithmHyperParameters", "featureTransformationParameters"):
        wanted = want_config.get(key, {})
        # DescribeSolution shows every hyperparameter, defaults too, some with a prefix
        # (`training.bptt`): compare only what we set, by its bare name.
        had = {k.rsplit(".", 1)[-1]: v for k, v in have_config.get(key, {}).items()}
        for name, value in wanted.items():
            if had.get(name) != value:
                diffs.append(f"{name}: {had.get(name)!r} -> {value!r}")
    for key in ("eventValueThreshold", "eventsConfig", "hpoConfig"):
        if want_config.get(key) != have_config.get(key) and want_config.get(key) is not None:
            diffs.append(f"{key} differs")
    return diffs


def campaign_config(solution: Solution, campaign: Campaign) -> dict[str, Any]:
    config: dict[str, Any] = {}
    exploration = {
        EXPLORATION[k]: _str(v) for k, v in solution.hyperparameters.items() if k in EXPLORATION
    }
    if exploration and solution.recipe == "user-personalization":
        config["itemExplorationConfig"] = exploration
    if campaign.enable_metadata:
        config["enableMetadataWithRecommendations"] = True
    return config


def pinned_version(campaign: Campaign) -> str | None:
    """The solution version a campaign pins on Personalize: an ARN (a `local` version id pins
    only the local provider, so on AWS it means "the newest")."""
    version = campaign.solution_version
    return version if version and version.startswith("arn:") else None


def epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else 0.0
