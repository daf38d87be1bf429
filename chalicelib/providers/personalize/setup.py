"""`python -m chalicelib setup` on AWS: the declarative configuration (`recs.toml`) applied to
Amazon Personalize idempotently (the request shapes are `shapes`', training is `training`'s).

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
from collections.abc import Callable
from typing import Any

from chalicelib import aws
from chalicelib.config import Campaign, ProjectConfig, Solution
from chalicelib.names import personalize_name
from chalicelib.providers.personalize import arns
from chalicelib.providers.personalize.control import describing, find, pages
from chalicelib.providers.personalize.shapes import (
    ALGORITHM,
    EXPLORATION,
    FEATURIZATION,
    avro_schema,
    campaign_config,
    epoch,
    pinned_version,
    solution_differences,
    solution_request,
)
from chalicelib.vocabulary import Progress, ProviderError, SetupReport

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
        self.report = SetupReport()
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
        found = find(pages(self.client.list_dataset_groups, "datasetGroups"), self.group)
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
        found = find(pages(self.client.list_schemas, "schemas"), name)
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
            pages(self.client.list_datasets, "datasets", datasetGroupArn=group_arn)
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
            pages(self.client.list_event_trackers, "eventTrackers", datasetGroupArn=group_arn)
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
                for f in pages(self.client.list_filters, "Filters", datasetGroupArn=group_arn)
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
                "filter", full, describing(self.client.describe_filter, "filter", filterArn=arn)
            )

    def solution(self, group_arn: str, solution: Solution) -> str:
        request = solution_request(group_arn, self.group, solution)
        name = request["name"]
        solutions = (
            pages(self.client.list_solutions, "solutions", datasetGroupArn=group_arn)
            if group_arn
            else iter(())
        )
        found = find(solutions, name)
        if found is None and self.dry_run:
            arn = ""
            self.report.add("solution", name, "would create", None, request["recipeArn"])
        elif found is None:
            arn = self.client.create_solution(**request)["solutionArn"]
            self.report.add("solution", name, "created", arn)
        else:
            arn = found["solutionArn"]
            have = self.client.describe_solution(solutionArn=arn)["solution"]
            diffs = solution_differences(request, have)
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
        versions = pages(
            self.client.list_solution_versions, "solutionVersions", solutionArn=solution_arn
        )
        active = [v for v in versions if v.get("status") == "ACTIVE"]
        active.sort(key=lambda v: epoch(v.get("creationDateTime")))
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
            find(pages(self.client.list_campaigns, "campaigns", solutionArn=solution_arn), name)
            if solution_arn
            else None
        )
        pinned = pinned_version(campaign)
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

    def apply(self) -> SetupReport:
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
        found = find(pages(self.client.list_dataset_groups, "datasetGroups"), self.group)
        if found is None:
            raise ProviderError(
                f"no dataset group {self.group!r}: run `python -m chalicelib setup`"
            )
        return str(found["datasetGroupArn"])

    def find_solution(self, group_arn: str, solution: Solution) -> str:
        name = personalize_name(self.group, solution.name)
        found = find(
            pages(self.client.list_solutions, "solutions", datasetGroupArn=group_arn), name
        )
        if found is None:
            raise ProviderError(f"no solution {name!r}: run `python -m chalicelib setup`")
        return str(found["solutionArn"])


def setup(config: ProjectConfig, progress: Progress | None = None, **options: Any) -> SetupReport:
    """Apply `config` to Personalize; see the module docstring."""
    return Setup(config, progress, **options).apply()
