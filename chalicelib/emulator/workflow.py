"""The control plane's training side: dataset import jobs, solutions (recipe ARNs to engine
recipes, hyperparameters, event settings, HPO), solution versions and their metrics, campaigns
(Create and Update) and batch inference jobs, with the service's rules and quotas. The work each
starts runs in `jobs`.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from pydantic import ValidationError

from chalicelib.config import EventOptions, EventParameters, HpoConfig
from chalicelib.emulator.control import Control
from chalicelib.emulator.errors import in_use, invalid, limit
from chalicelib.emulator.registry import ACTIVE, IN_PROGRESS, PENDING
from chalicelib.engine.recipes import RECIPES

# Recipe ARN → the engine's recipe. Other Personalize recipes exist; the emulator refuses them.
RECIPE_ARNS = {
    "arn:aws:personalize:::recipe/aws-user-personalization": "user-personalization",
    "arn:aws:personalize:::recipe/aws-user-personalization-v2": "user-personalization",
    "arn:aws:personalize:::recipe/aws-sims": "similar-items",
    "arn:aws:personalize:::recipe/aws-personalized-ranking": "personalized-ranking",
    "arn:aws:personalize:::recipe/aws-personalized-ranking-v2": "personalized-ranking",
    "arn:aws:personalize:::recipe/aws-popularity-count": "popularity-count",
}
MAX_RUNNING_IMPORTS = 5  # pending or in progress, per region
MAX_RUNNING_VERSIONS = 20
MAX_RUNNING_BATCH_JOBS = 5
MAX_CAMPAIGNS_PER_GROUP = 5
MAX_RESULTS = 500
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(value: Any) -> Any:
    """Personalize's camelCase hpoConfig as the configuration's snake case."""
    if isinstance(value, dict):
        return {
            _CAMEL.sub("_", k).lower().replace("hyper_parameter", "hyperparameter"): _snake(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def _running(records: list[dict[str, Any]]) -> int:
    return sum(1 for r in records if r.get("status") in (PENDING, IN_PROGRESS))


class Workflow:
    def __init__(self, control: Control) -> None:
        self.c = control
        self.r = control.registry
        for name in (
            "CreateDatasetImportJob",
            "CreateSolution",
            "CreateSolutionVersion",
            "GetSolutionMetrics",
            "CreateCampaign",
            "UpdateCampaign",
            "CreateBatchInferenceJob",
        ):
            control.handlers[name] = getattr(self, name)

    def CreateDatasetImportJob(self, b: dict[str, Any]) -> dict[str, Any]:
        dataset = self.r.get("Dataset", b["datasetArn"])
        if dataset["status"] != ACTIVE:
            raise in_use(f"{b['datasetArn']} is {dataset['status']}.")
        mode = b.get("importMode", "FULL")
        jobs = self.r.all("DatasetImportJob", datasetArn=b["datasetArn"])
        if mode == "INCREMENTAL" and not any(j["status"] == ACTIVE for j in jobs):
            raise invalid(
                "INCREMENTAL import mode is allowed only after a bulk import of this dataset."
            )
        if _running(self.r.all("DatasetImportJob")) >= MAX_RUNNING_IMPORTS:
            raise limit(f"At most {MAX_RUNNING_IMPORTS} import jobs may be pending or running.")
        if not b["dataSource"].get("dataLocation", "").startswith("s3://"):
            raise invalid("dataSource.dataLocation must be an s3:// path.")
        arn = self.c.arn("dataset-import-job", b["jobName"])
        record = {
            "jobName": b["jobName"],
            "datasetImportJobArn": arn,
            "datasetArn": b["datasetArn"],
            "dataSource": b["dataSource"],
            "importMode": mode,
            "publishAttributionMetricsToS3": b.get("publishAttributionMetricsToS3", False),
        }
        if "roleArn" in b:
            record["roleArn"] = b["roleArn"]
        self.c.create("DatasetImportJob", record)
        return {"datasetImportJobArn": arn}

    def CreateSolution(self, b: dict[str, Any]) -> dict[str, Any]:
        self.r.get("DatasetGroup", b["datasetGroupArn"])
        if b.get("performAutoML"):
            raise invalid("The emulator does not run AutoML: name a recipeArn.")
        recipe = RECIPE_ARNS.get(b.get("recipeArn", ""))
        if recipe is None:
            known = ", ".join(sorted(RECIPE_ARNS))
            raise invalid(f"The emulator trains these recipes only: {known}.")
        config = b.get("solutionConfig") or {}
        given = {
            **config.get("algorithmHyperParameters", {}),
            **config.get("featureTransformationParameters", {}),
        }
        params_model = RECIPES[recipe].Params
        params = {k: v for k, v in given.items() if k in params_model.model_fields}
        try:
            params_model.model_validate(params)
            events = EventOptions(
                event_type=b.get("eventType"),
                event_value_threshold=config.get("eventValueThreshold"),
                events=tuple(
                    EventParameters.model_validate(_snake(e))
                    for e in config.get("eventsConfig", {}).get("eventParametersList", [])
                ),
            )
            hpo = None
            if b.get("performHPO"):
                hpo = HpoConfig.model_validate(_snake(config.get("hpoConfig", {})))
        except ValidationError as exc:
            raise invalid(f"Invalid solution configuration: {exc.errors()[0]['msg']}") from None
        arn = self.c.arn("solution", b["name"])
        record = {
            "name": b["name"],
            "solutionArn": arn,
            "datasetGroupArn": b["datasetGroupArn"],
            "recipeArn": b["recipeArn"],
            "performHPO": bool(b.get("performHPO", False)),
            "performAutoML": False,
            "performAutoTraining": bool(b.get("performAutoTraining", True)),
            "solutionConfig": config,
            "_recipe": recipe,
            "_params": params,
            "_events": events.model_dump(),
            "_hpo": hpo.model_dump() if hpo else None,
        }
        if "eventType" in b:
            record["eventType"] = b["eventType"]
        self.c.create("Solution", record)
        return {"solutionArn": arn}

    def CreateSolutionVersion(self, b: dict[str, Any]) -> dict[str, Any]:
        solution = self.r.get("Solution", b["solutionArn"])
        if solution["status"] != ACTIVE:
            raise in_use(f"{b['solutionArn']} is {solution['status']}.")
        mode = b.get("trainingMode", "FULL")
        versions = self.r.all("SolutionVersion", solutionArn=b["solutionArn"])
        if mode == "UPDATE" and (
            solution["_recipe"] != "user-personalization"
            or not any(v["status"] == ACTIVE and v["trainingMode"] == "FULL" for v in versions)
        ):
            raise invalid(
                "trainingMode UPDATE needs User-Personalization and an ACTIVE FULL version."
            )
        if _running(self.r.all("SolutionVersion")) >= MAX_RUNNING_VERSIONS:
            raise limit(f"At most {MAX_RUNNING_VERSIONS} solution versions may be training.")
        version_id = uuid.uuid4().hex[:8]
        arn = f"{b['solutionArn']}/{version_id}"
        record = {
            "solutionVersionArn": arn,
            "solutionArn": b["solutionArn"],
            "recipeArn": solution["recipeArn"],
            "datasetGroupArn": solution["datasetGroupArn"],
            "performHPO": solution["performHPO"],
            "performAutoML": False,
            "solutionConfig": solution["solutionConfig"],
            "trainingMode": mode,
            "trainingType": "MANUAL",
            "_versionId": version_id,
        }
        if "name" in b:
            record["name"] = b["name"]
        if "eventType" in solution:
            record["eventType"] = solution["eventType"]
        self.c.create("SolutionVersion", record)
        return {"solutionVersionArn": arn}

    def GetSolutionMetrics(self, b: dict[str, Any]) -> dict[str, Any]:
        version = self.r.get("SolutionVersion", b["solutionVersionArn"])
        if version["status"] != ACTIVE:
            raise in_use(f"{b['solutionVersionArn']} is {version['status']}.")
        metrics = {k: float(v) for k, v in (version.get("_metrics") or {}).items()}
        return {"solutionVersionArn": b["solutionVersionArn"], "metrics": metrics}

    def _active_version(self, arn: str) -> dict[str, Any]:
        version = self.r.get("SolutionVersion", arn)
        if version["status"] != ACTIVE:
            raise in_use(f"{arn} is {version['status']}: only an ACTIVE version can serve.")
        return version

    def CreateCampaign(self, b: dict[str, Any]) -> dict[str, Any]:
        version = self._active_version(b["solutionVersionArn"])
        group = version["datasetGroupArn"]
        campaigns = [
            c
            for c in self.r.all("Campaign")
            if self.r.get("Solution", c["solutionArn"])["datasetGroupArn"] == group
        ]
        if len(campaigns) >= MAX_CAMPAIGNS_PER_GROUP:
            raise limit(f"A dataset group has at most {MAX_CAMPAIGNS_PER_GROUP} campaigns.")
        arn = self.c.arn("campaign", b["name"])
        record = {
            "name": b["name"],
            "campaignArn": arn,
            "solutionVersionArn": b["solutionVersionArn"],
            "solutionArn": version["solutionArn"],
            "minProvisionedTPS": b.get("minProvisionedTPS", 1),
            "campaignConfig": b.get("campaignConfig", {}),
        }
        self.c.create("Campaign", record)
        return {"campaignArn": arn}

    def UpdateCampaign(self, b: dict[str, Any]) -> dict[str, Any]:
        campaign = self.r.get("Campaign", b["campaignArn"])
        update = campaign.get("latestCampaignUpdate") or {}
        if campaign["status"] != ACTIVE or update.get("status") in (PENDING, IN_PROGRESS):
            raise in_use(f"{b['campaignArn']} is being created or updated.")
        version_arn = b.get("solutionVersionArn", campaign["solutionVersionArn"])
        version = self._active_version(version_arn)
        if version["solutionArn"] != campaign["solutionArn"]:
            raise invalid("A campaign can only serve versions of its own solution.")
        now = time.time()
        self.r.update(
            "Campaign",
            b["campaignArn"],
            latestCampaignUpdate={
                "solutionVersionArn": version_arn,
                "minProvisionedTPS": b.get("minProvisionedTPS", campaign["minProvisionedTPS"]),
                "campaignConfig": b.get("campaignConfig", campaign["campaignConfig"]),
                "status": PENDING,
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            },
        )
        self.c.jobs.submit("Campaign", b["campaignArn"])
        return {"campaignArn": b["campaignArn"]}

    def CreateBatchInferenceJob(self, b: dict[str, Any]) -> dict[str, Any]:
        self._active_version(b["solutionVersionArn"])
        if b.get("filterArn"):
            self.r.get("Filter", b["filterArn"])
        n = b.get("numResults", 25)
        if not 1 <= n <= MAX_RESULTS:
            raise invalid(f"numResults must be between 1 and {MAX_RESULTS}.")
        if b.get("batchInferenceJobMode", "BATCH_INFERENCE") != "BATCH_INFERENCE":
            raise invalid("The emulator runs BATCH_INFERENCE jobs only.")
        if _running(self.r.all("BatchInferenceJob")) >= MAX_RUNNING_BATCH_JOBS:
            raise limit(f"At most {MAX_RUNNING_BATCH_JOBS} batch inference jobs may run.")
        arn = self.c.arn("batch-inference-job", b["jobName"])
        record = {
            "jobName": b["jobName"],
            "batchInferenceJobArn": arn,
            "solutionVersionArn": b["solutionVersionArn"],
            "numResults": n,
            "jobInput": b["jobInput"],
            "jobOutput": b["jobOutput"],
            "roleArn": b["roleArn"],
            "batchInferenceJobMode": "BATCH_INFERENCE",
        }
        for key in ("filterArn", "batchInferenceJobConfig"):
            if key in b:
                record[key] = b[key]
        self.c.create("BatchInferenceJob", record)
        return {"batchInferenceJobArn": arn}
