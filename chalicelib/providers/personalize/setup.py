"""`python -m chalicelib setup` on AWS: the declarative configuration (`recs.toml`) applied to
Amazon Personalize idempotently, plus training and metrics through the control plane.

Every resource is looked up by its name first and reused when it matches; a difference that
Personalize can apply in place (a dataset's schema, a campaign's TPS or config) is applied and
reported as `updated`; one it cannot (a solution's recipe or hyperparameters, a filter's
expression) is reported as `changed` with what differs, and left alone: replacing it would break
the live campaign or filter. Nothing is ever created twice. Asynchronous resources are waited for
with progress.

Names: everything is prefixed with the dataset group's name (`braze-shop-items`,
`braze-shop-exclude-purchased`, ...), so several stages can share one account. Schemas are
immutable, so a schema's name carries a hash of its fields: a changed schema is a new schema,
and the dataset is switched to it with UpdateDataset.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from chalicelib import aws
from chalicelib.config import Campaign, ProjectConfig, Solution
from chalicelib.names import personalize_name
from chalicelib.providers.personalize import arns
from chalicelib.settings import Settings
from chalicelib.vocabulary import Progress, ProviderError, SolutionVersionInfo

Action = Literal[
    "created", "exists", "updated", "changed", "pending", "skipped", "would create", "would update"
]
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
ROUTE_RECIPES = {
    "recommendations": {"user-personalization", "popularity-count"},
    "related-items": {"similar-items"},
    "rankings": {"personalized-ranking"},
}
SETTING_OF_ROUTE = {
    "recommendations": "RECS_CAMPAIGN_ARN",
    "related-items": "RECS_SIMILAR_ITEMS_CAMPAIGN_ARN",
    "rankings": "RECS_RANKING_CAMPAIGN_ARN",
}
FAILED = (
    "CREATE FAILED",
    "UPDATE FAILED",
    "DELETE PENDING",
    "DELETE IN_PROGRESS",
    "CREATE STOPPED",
)


@dataclass
class Step:
    kind: str
    name: str
    action: Action
    arn: str | None = None
    detail: str = ""


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)

    def add(
        self, kind: str, name: str, action: Action, arn: str | None = None, detail: str = ""
    ) -> Step:
        step = Step(kind, name, action, arn, detail)
        self.steps.append(step)
        return step

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.action == action)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "settings": self.settings}


def _pages(method: Callable[..., dict[str, Any]], key: str, **params: Any) -> Iterator[dict]:
    token: str | None = None
    while True:
        out = method(**params, **({"nextToken": token} if token else {}))
        yield from out.get(key, [])
        token = out.get("nextToken")
        if not token:
            return


def _find(items: Iterator[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get("name") == name), None)


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


def _solution_differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
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


class Setup:
    """One run of `setup` (or `train`) against the Personalize control plane."""

    def __init__(
        self,
        config: ProjectConfig,
        progress: Progress | None = None,
        *,
        poll_seconds: float = 15.0,
        timeout_seconds: float = 6 * 3600,
        sleep: Callable[[float], None] = time.sleep,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        # A dry run reads everything, creates and updates nothing, and reports what it would do.
        self.dry_run = dry_run
        self.client = aws.client("personalize")
        self.progress = progress
        self.poll_seconds, self.timeout_seconds, self.sleep = poll_seconds, timeout_seconds, sleep
        self.report = Report()
        self.group = config.dataset_group.name

    # -- waiting -----------------------------------------------------------------------------

    def wait(self, kind: str, name: str, describe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Poll until ACTIVE; a failed resource stops the run with Personalize's reason."""
        if self.dry_run:
            return {}
        started = time.monotonic()
        polls = 0
        while True:
            resource = describe()
            status = resource.get("status", "ACTIVE")
            # An updated campaign stays ACTIVE (serving the old version) while its update runs.
            update = resource.get("latestCampaignUpdate") or {}
            if status == "ACTIVE" and update.get("status", "ACTIVE") != "ACTIVE":
                status = update["status"]
                resource = {**resource, "failureReason": update.get("failureReason")}
            if self.progress:
                self.progress(f"{kind} {name}: {status}", polls, None)
            if status == "ACTIVE":
                return resource
            if status in FAILED:
                reason = resource.get("failureReason", "no reason given")
                raise ProviderError(f"{kind} {name} is {status}: {reason}")
            if time.monotonic() - started > self.timeout_seconds:
                raise ProviderError(f"{kind} {name} still {status} after {self.timeout_seconds} s")
            polls += 1
            self.sleep(self.poll_seconds)

    # -- resources ---------------------------------------------------------------------------

    def dataset_group(self) -> str:
        found = _find(_pages(self.client.list_dataset_groups, "datasetGroups"), self.group)
        if found:
            arn = found["datasetGroupArn"]
            self.report.add("dataset group", self.group, "exists", arn)
        elif self.dry_run:
            self.report.add("dataset group", self.group, "would create")
            return ""
        else:
            arn = self.client.create_dataset_group(name=self.group)["datasetGroupArn"]
            self.report.add("dataset group", self.group, "created", arn)
        self.wait(
            "dataset group",
            self.group,
            lambda: self.client.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"],
        )
        self.report.settings["RECS_DATASET_GROUP_ARN"] = arn
        return str(arn)

    def schema(self, dataset: str, fields: dict[str, str]) -> str:
        schema = avro_schema(dataset, fields)
        text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        name = personalize_name(self.group, dataset, hashlib.sha256(text.encode()).hexdigest()[:8])
        found = _find(_pages(self.client.list_schemas, "schemas"), name)
        if found:
            self.report.add("schema", name, "exists", found["schemaArn"])
            return str(found["schemaArn"])
        if self.dry_run:
            self.report.add("schema", name, "would create")
            return ""
        arn = self.client.create_schema(name=name, schema=json.dumps(schema))["schemaArn"]
        self.report.add("schema", name, "created", arn)
        return str(arn)

    def dataset(self, group_arn: str, dataset: str, schema_arn: str) -> str:
        kind = dataset.upper()
        datasets = (
            _pages(self.client.list_datasets, "datasets", datasetGroupArn=group_arn)
            if group_arn
            else iter(())
        )
        found = next((d for d in datasets if d.get("datasetType", "").upper() == kind), None)
        name = personalize_name(self.group, dataset)
        if found is None and self.dry_run:
            self.report.add("dataset", name, "would create")
            return ""
        if found is None:
            arn = self.client.create_dataset(
                name=name, schemaArn=schema_arn, datasetGroupArn=group_arn, datasetType=kind
            )["datasetArn"]
            self.report.add("dataset", name, "created", arn)
        else:
            arn = found["datasetArn"]
            current = self.client.describe_dataset(datasetArn=arn)["dataset"]
            if current.get("schemaArn") == schema_arn:
                self.report.add("dataset", name, "exists", arn)
            elif self.dry_run:
                detail = f"schema {current.get('schemaArn')} -> a new schema"
                self.report.add("dataset", name, "would update", arn, detail)
            else:
                self.client.update_dataset(datasetArn=arn, schemaArn=schema_arn)
                detail = f"schema {current.get('schemaArn')} -> {schema_arn}"
                self.report.add("dataset", name, "updated", arn, detail)
        self.wait("dataset", name, lambda: self.client.describe_dataset(datasetArn=arn)["dataset"])
        return str(arn)

    def event_tracker(self, group_arn: str) -> None:
        name = personalize_name(self.group, self.config.event_tracker)
        trackers = (
            _pages(self.client.list_event_trackers, "eventTrackers", datasetGroupArn=group_arn)
            if group_arn
            else iter(())
        )
        found = next(iter(trackers), None)  # one per dataset group, whatever its name
        if found is None and self.dry_run:
            self.report.add("event tracker", name, "would create")
            return
        if found is None:
            arn = self.client.create_event_tracker(name=name, datasetGroupArn=group_arn)[
                "eventTrackerArn"
            ]
            self.report.add("event tracker", name, "created", arn)
        else:
            arn = found["eventTrackerArn"]
            self.report.add("event tracker", found["name"], "exists", arn)
        if self.dry_run:
            return
        tracker = self.wait(
            "event tracker",
            name,
            lambda: self.client.describe_event_tracker(eventTrackerArn=arn)["eventTracker"],
        )
        self.report.settings["RECS_TRACKING_ID"] = tracker["trackingId"]

    def filters(self, group_arn: str) -> None:
        existing = (
            {
                f["name"]: f
                for f in _pages(self.client.list_filters, "Filters", datasetGroupArn=group_arn)
            }
            if group_arn
            else {}
        )
        for name, expression in self.config.filters.items():
            full = arns.filter_name(self.group, name)
            found = existing.get(full)
            if found is None and self.dry_run:
                self.report.add("filter", full, "would create", None, expression)
                continue
            if found is None:
                arn = self.client.create_filter(
                    name=full, datasetGroupArn=group_arn, filterExpression=expression
                )["filterArn"]
                self.report.add("filter", full, "created", arn)
            else:
                arn = found["filterArn"]
                have = self.client.describe_filter(filterArn=arn)["filter"]
                if have.get("filterExpression") == expression:
                    self.report.add("filter", full, "exists", arn)
                else:
                    detail = (
                        f"expression {have.get('filterExpression')!r} -> {expression!r}; "
                        "filters cannot be updated: delete it (DeleteFilter) and run setup again"
                    )
                    self.report.add("filter", full, "changed", arn, detail)
                    continue
            self.wait(
                "filter", full, lambda a=arn: self.client.describe_filter(filterArn=a)["filter"]
            )

    def solution(self, group_arn: str, solution: Solution) -> str:
        request = solution_request(group_arn, self.group, solution)
        name = request["name"]
        solutions = (
            _pages(self.client.list_solutions, "solutions", datasetGroupArn=group_arn)
            if group_arn
            else iter(())
        )
        found = _find(solutions, name)
        if found is None and self.dry_run:
            arn = ""
            self.report.add("solution", name, "would create", None, request["recipeArn"])
        elif found is None:
            arn = self.client.create_solution(**request)["solutionArn"]
            self.report.add("solution", name, "created", arn)
        else:
            arn = found["solutionArn"]
            have = self.client.describe_solution(solutionArn=arn)["solution"]
            diffs = _solution_differences(request, have)
            if diffs:
                detail = "; ".join(diffs) + (
                    "; a solution's recipe and hyperparameters cannot be updated: give the "
                    "solution a new name to train one with them"
                )
                self.report.add("solution", name, "changed", arn, detail)
            else:
                self.report.add("solution", name, "exists", arn)
        self.wait(
            "solution", name, lambda: self.client.describe_solution(solutionArn=arn)["solution"]
        )
        local_only = sorted(
            k
            for k in solution.hyperparameters
            if k not in ALGORITHM[solution.recipe] | FEATURIZATION | set(EXPLORATION)
        )
        if local_only:
            self.report.steps[-1].detail += f" (local engine only: {', '.join(local_only)})"
        return str(arn)

    def latest_version(self, solution_arn: str) -> str | None:
        versions = _pages(
            self.client.list_solution_versions, "solutionVersions", solutionArn=solution_arn
        )
        active = [v for v in versions if v.get("status") == "ACTIVE"]
        active.sort(key=lambda v: _epoch(v.get("creationDateTime")))
        return str(active[-1]["solutionVersionArn"]) if active else None

    def campaign(
        self, route: str, campaign: Campaign, solution: Solution, solution_arn: str
    ) -> None:
        name = personalize_name(self.group, route)
        if solution.recipe not in ROUTE_RECIPES[route]:
            detail = (
                f"solution {solution.name!r} uses {solution.recipe}; on Personalize the {route} "
                f"route needs one of {sorted(ROUTE_RECIPES[route])}"
            )
            self.report.add("campaign", name, "skipped", None, detail)
            return
        config = campaign_config(solution, campaign)
        found = (
            _find(_pages(self.client.list_campaigns, "campaigns", solutionArn=solution_arn), name)
            if solution_arn
            else None
        )
        pinned = _pinned(campaign)
        version = pinned or (self.latest_version(solution_arn) if solution_arn else None)
        if found is None:
            if version is None:
                detail = "no trained solution version yet: run `python -m chalicelib train`"
                self.report.add("campaign", name, "pending", None, detail)
                return
            if self.dry_run:
                self.report.add("campaign", name, "would create", None, version)
                return
            arn = self.client.create_campaign(
                name=name,
                solutionVersionArn=version,
                minProvisionedTPS=campaign.min_tps,
                **({"campaignConfig": config} if config else {}),
            )["campaignArn"]
            self.report.add("campaign", name, "created", arn)
        else:
            arn = found["campaignArn"]
            have = self.client.describe_campaign(campaignArn=arn)["campaign"]
            changes: dict[str, Any] = {}
            if have.get("minProvisionedTPS") != campaign.min_tps:
                changes["minProvisionedTPS"] = campaign.min_tps
            have_config = have.get("campaignConfig", {})
            if any(have_config.get(k) != v for k, v in config.items()):
                changes["campaignConfig"] = config
            if pinned and have.get("solutionVersionArn") != version:
                changes["solutionVersionArn"] = version
            if changes:
                detail = ", ".join(f"{k} -> {v}" for k, v in changes.items())
                if self.dry_run:
                    self.report.add("campaign", name, "would update", arn, detail)
                    return
                self.client.update_campaign(campaignArn=arn, **changes)
                self.report.add("campaign", name, "updated", arn, detail)
            else:
                self.report.add("campaign", name, "exists", arn)
        self.wait(
            "campaign", name, lambda: self.client.describe_campaign(campaignArn=arn)["campaign"]
        )
        self.report.settings[SETTING_OF_ROUTE[route]] = arn

    # -- whole runs --------------------------------------------------------------------------

    def apply(self) -> Report:
        group_arn = self.dataset_group()
        for dataset, fields in self.config.schemas.items():
            self.dataset(group_arn, dataset, self.schema(dataset, fields))
        self.event_tracker(group_arn)
        self.filters(group_arn)
        solution_arns = {s.name: self.solution(group_arn, s) for s in self.config.solutions}
        for route, campaign in self.config.campaigns.items():
            solution = self.config.solution(campaign.solution)
            self.campaign(route, campaign, solution, solution_arns[solution.name])
        return self.report

    def find_group(self) -> str:
        found = _find(_pages(self.client.list_dataset_groups, "datasetGroups"), self.group)
        if found is None:
            raise ProviderError(
                f"no dataset group {self.group!r}: run `python -m chalicelib setup`"
            )
        return str(found["datasetGroupArn"])

    def find_solution(self, group_arn: str, solution: Solution) -> str:
        name = personalize_name(self.group, solution.name)
        found = _find(
            _pages(self.client.list_solutions, "solutions", datasetGroupArn=group_arn), name
        )
        if found is None:
            raise ProviderError(f"no solution {name!r}: run `python -m chalicelib setup`")
        return str(found["solutionArn"])


def _pinned(campaign: Campaign) -> str | None:
    """The solution version a campaign pins on Personalize: an ARN (a `local` version id pins
    only the local provider, so on AWS it means "the newest")."""
    version = campaign.solution_version
    return version if version and version.startswith("arn:") else None


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else 0.0


def setup(config: ProjectConfig, progress: Progress | None = None, **options: Any) -> Report:
    """Apply `config` to Personalize; see the module docstring."""
    return Setup(config, progress, **options).apply()


def _info(client: Any, version_arn: str, solution: Solution) -> SolutionVersionInfo:
    version = client.describe_solution_version(solutionVersionArn=version_arn)["solutionVersion"]
    metrics: dict[str, float] = {}
    if version.get("status") == "ACTIVE":
        metrics = dict(client.get_solution_metrics(solutionVersionArn=version_arn)["metrics"])
    return SolutionVersionInfo(
        version_id=version_arn,
        solution=solution.name,
        recipe=solution.recipe,
        status=str(version.get("status")),
        metrics=metrics,
        counts={},
        training_seconds=round(float(version.get("trainingHours", 0.0)) * 3600, 1),
        created=_epoch(version.get("creationDateTime")),
    )


def metrics(
    settings: Settings,
    config: ProjectConfig,
    solution: str | None = None,
    version_id: str | None = None,
) -> SolutionVersionInfo | None:
    """GetSolutionMetrics of a version: the one named, else `solution`'s newest ACTIVE one, else
    the one the recommendations campaign serves."""
    client = aws.client("personalize")
    route = config.campaigns.get("recommendations")
    chosen = config.solution(solution or (route.solution if route else config.solutions[0].name))
    if version_id is not None:
        return _info(client, version_id, _solution_of(config, version_id, chosen))
    if solution is None and settings.campaign_arn and ":campaign/" in settings.campaign_arn:
        campaign = client.describe_campaign(campaignArn=settings.campaign_arn)["campaign"]
        return _info(client, campaign["solutionVersionArn"], chosen)
    run = Setup(config)
    found = run.latest_version(run.find_solution(run.find_group(), chosen))
    return _info(client, found, chosen) if found else None


def _solution_of(config: ProjectConfig, version_arn: str, default: Solution) -> Solution:
    """`…:solution/GROUP-NAME/VERSION` names its solution."""
    for solution in config.solutions:
        if f":solution/{config.dataset_group.name}-{solution.name}/" in version_arn:
            return solution
    return default


def versions(config: ProjectConfig, solution: str | None = None) -> list[SolutionVersionInfo]:
    """Every version of the configured solutions (or one), newest first, metrics included."""
    run = Setup(config)
    group_arn = run.find_group()
    infos = []
    for sol in [config.solution(solution)] if solution else config.solutions:
        solution_arn = run.find_solution(group_arn, sol)
        pages = _pages(
            run.client.list_solution_versions, "solutionVersions", solutionArn=solution_arn
        )
        infos.extend(_info(run.client, v["solutionVersionArn"], sol) for v in pages)
    return sorted(infos, key=lambda i: i.created, reverse=True)


def deploy(config: ProjectConfig, route: str, version_arn: str) -> str:
    """Make the route's campaign serve `version_arn` (UpdateCampaign); its ARN is returned."""
    campaign = config.campaigns.get(route)  # type: ignore[call-overload]
    if campaign is None:
        raise ValueError(f"no campaign {route!r} in the configuration")
    solution = config.solution(campaign.solution)
    if _solution_of(config, version_arn, solution).name != solution.name:
        raise ValueError(f"{version_arn!r} is not a version of solution {solution.name!r}")
    run = Setup(config)
    solution_arn = run.find_solution(run.find_group(), solution)
    name = personalize_name(run.group, route)
    found = _find(_pages(run.client.list_campaigns, "campaigns", solutionArn=solution_arn), name)
    if found is None:
        raise ValueError(f"no campaign {name!r}: run `python -m chalicelib setup`")
    run.client.update_campaign(campaignArn=found["campaignArn"], solutionVersionArn=version_arn)
    return str(found["campaignArn"])


def train(
    settings: Settings,
    config: ProjectConfig,
    solution: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> list[SolutionVersionInfo]:
    """A new FULL solution version of each solution (or one), waited for; then campaigns of those
    solutions that do not pin a version are moved to it (or created) by applying the setup."""
    run = Setup(config, progress, **options)
    group_arn = run.find_group()
    chosen = [config.solution(solution)] if solution else list(config.solutions)
    infos = []
    for sol in chosen:
        solution_arn = run.find_solution(group_arn, sol)
        version = run.client.create_solution_version(solutionArn=solution_arn, trainingMode="FULL")[
            "solutionVersionArn"
        ]
        run.wait(
            "solution version",
            version.rsplit("/", 1)[-1],
            lambda v=version: run.client.describe_solution_version(solutionVersionArn=v)[
                "solutionVersion"
            ],
        )
        infos.append(_info(run.client, version, sol))
        for route, campaign in config.campaigns.items():
            if campaign.solution != sol.name or _pinned(campaign):
                continue
            name = personalize_name(run.group, route)
            campaigns = _pages(run.client.list_campaigns, "campaigns", solutionArn=solution_arn)
            found = _find(campaigns, name)
            if found is not None:
                run.client.update_campaign(
                    campaignArn=found["campaignArn"], solutionVersionArn=version
                )
                run.wait(
                    "campaign",
                    name,
                    lambda a=found["campaignArn"]: run.client.describe_campaign(campaignArn=a)[
                        "campaign"
                    ],
                )
            elif sol.recipe in ROUTE_RECIPES[route]:
                run.campaign(route, campaign, sol, solution_arn)
    return infos
