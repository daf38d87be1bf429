"""An in-memory Amazon Personalize control plane behind the real boto3 client, for `setup`,
`train` and `metrics` tests (moto implements only schemas).

Requests pass botocore's parameter validation and serialisation, and are then checked against
the operation's input shape with the maxima, patterns and enums botocore skips
(`tests.service_model`): a violation is answered as the service would (400
ValidationException) and kept in `violations`. The fake answers at `before-send` with JSON that
is first checked against the operation's output shape in the service model, then parsed by
botocore as a real reply would be. New resources start in
`CREATE PENDING` and become `ACTIVE` on the next Describe, so waiting is exercised. Creating a
name that exists fails as Personalize does, so a second `setup` cannot quietly create twice.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator

from chalicelib import aws
from tests import iam_support
from tests.personalize_fakes import ACCOUNT, REGION, reply
from tests.service_model import check

PREFIX = f"arn:aws:personalize:{REGION}:{ACCOUNT}"
METRICS = {
    "normalized_discounted_cumulative_gain_at_10": 0.31,
    "precision_at_10": 0.08,
    "coverage": 0.42,
}


class FakePersonalize:
    def __init__(self) -> None:
        self.client = aws.client("personalize")
        self.model = self.client.meta.service_model
        self.calls: Counter[str] = Counter()
        self.violations: list[str] = []
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}  # kind -> arn -> record
        self._ids = itertools.count(1)
        self._clock = itertools.count(1_700_000_000, 60)
        self.refusals: dict[str, ServiceError] = {}  # operation -> the error it answers with
        self.client.meta.events.register_first("before-send.personalize", self._send)

    def refuse(self, operation: str, code: str, message: str) -> None:
        """Make every later call of `operation` fail with the service's error `code`."""
        self.refusals[operation] = ServiceError(code, message)

    # -- plumbing ----------------------------------------------------------------------------

    def _send(self, request: Any, **_: Any) -> Any:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        body = json.loads(request.body or b"{}")
        self.calls[operation] += 1
        problems = check("personalize", operation, body)
        if problems:
            self.violations += problems
            return reply(400, {"message": "; ".join(problems)}, "ValidationException")
        try:
            if operation in self.refusals:
                raise self.refusals[operation]
            out = getattr(self, f"_{operation}")(body)
        except ServiceError as exc:
            return reply(400, {"message": exc.message}, exc.code)
        self._check(operation, out)
        return reply(200, json.loads(json.dumps(out, default=_epoch)))

    def _check(self, operation: str, out: dict[str, Any]) -> None:
        shape = self.model.operation_model(operation).output_shape
        report = ParamValidator().validate(out, shape)
        assert not report.has_errors(), report.generate_report()

    def creates(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("Create"))

    def _new(self, kind: str, arn: str, record: dict[str, Any]) -> dict[str, Any]:
        if arn in self.resources.setdefault(kind, {}):
            raise ServiceError("ResourceAlreadyExistsException", f"{arn} already exists")
        now = datetime.fromtimestamp(next(self._clock), UTC)
        record = {**record, "status": "CREATE PENDING", "creationDateTime": now}
        self.resources[kind][arn] = record
        return record

    def _get(self, kind: str, arn: str) -> dict[str, Any]:
        record = self.resources.get(kind, {}).get(arn)
        if record is None:
            raise ServiceError("ResourceNotFoundException", f"{arn} not found")
        return record

    def _describe(self, kind: str, arn: str) -> dict[str, Any]:
        record = self._get(kind, arn)
        shown = copy.deepcopy(record)  # what it was at this moment
        if record["status"].endswith("PENDING"):
            record["status"] = "ACTIVE"  # active from the next look on
        update = record.get("latestCampaignUpdate")
        if update and update["status"].endswith("PENDING"):
            update["status"] = "ACTIVE"
        return shown

    def _list(self, kind: str, keys: tuple[str, ...], **match: str) -> list[dict[str, Any]]:
        return [
            {k: r[k] for k in keys if k in r}
            for r in self.resources.get(kind, {}).values()
            if all(r.get(k) == v for k, v in match.items())
        ]

    # -- dataset groups, schemas, datasets, trackers ----------------------------------------

    def _CreateDatasetGroup(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{PREFIX}:dataset-group/{b['name']}"
        self._new("group", arn, {"name": b["name"], "datasetGroupArn": arn})
        return {"datasetGroupArn": arn}

    def _ListDatasetGroups(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"datasetGroups": self._list("group", ("name", "datasetGroupArn", "status"))}

    def _DescribeDatasetGroup(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"datasetGroup": self._describe("group", b["datasetGroupArn"])}

    def _CreateSchema(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{PREFIX}:schema/{b['name']}"
        self._new("schema", arn, {"name": b["name"], "schemaArn": arn, "schema": b["schema"]})
        self.resources["schema"][arn]["status"] = "ACTIVE"
        return {"schemaArn": arn}

    def _ListSchemas(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": self._list("schema", ("name", "schemaArn"))}

    def _CreateDataset(self, b: dict[str, Any]) -> dict[str, Any]:
        group = b["datasetGroupArn"].rpartition("/")[2]
        arn = f"{PREFIX}:dataset/{group}/{b['datasetType'].upper()}"
        self._new("dataset", arn, {**b, "datasetArn": arn})
        return {"datasetArn": arn}

    def _ListDatasets(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "datasetArn", "datasetType", "status")
        return {"datasets": self._list("dataset", keys, datasetGroupArn=b["datasetGroupArn"])}

    def _DescribeDataset(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"dataset": self._describe("dataset", b["datasetArn"])}

    def _UpdateDataset(self, b: dict[str, Any]) -> dict[str, Any]:
        self._get("dataset", b["datasetArn"])["schemaArn"] = b["schemaArn"]
        return {"datasetArn": b["datasetArn"]}

    def _CreateEventTracker(self, b: dict[str, Any]) -> dict[str, Any]:
        if self._list("tracker", ("name",), datasetGroupArn=b["datasetGroupArn"]):
            raise ServiceError(
                "ResourceAlreadyExistsException", "one event tracker per dataset group"
            )
        arn = f"{PREFIX}:event-tracker/{next(self._ids):08d}"
        record = {**b, "eventTrackerArn": arn, "trackingId": f"tracking-{next(self._ids)}"}
        self._new("tracker", arn, record)
        return {"eventTrackerArn": arn, "trackingId": record["trackingId"]}

    def _ListEventTrackers(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "eventTrackerArn", "status")
        return {"eventTrackers": self._list("tracker", keys, datasetGroupArn=b["datasetGroupArn"])}

    def _DescribeEventTracker(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"eventTracker": self._describe("tracker", b["eventTrackerArn"])}

    # -- filters, solutions, versions, campaigns -------------------------------------------

    def _CreateFilter(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{PREFIX}:filter/{b['name']}"
        self._new("filter", arn, {**b, "filterArn": arn})
        return {"filterArn": arn}

    def _ListFilters(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "filterArn", "status", "datasetGroupArn")
        return {"Filters": self._list("filter", keys, datasetGroupArn=b["datasetGroupArn"])}

    def _DescribeFilter(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"filter": self._describe("filter", b["filterArn"])}

    def _CreateSolution(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{PREFIX}:solution/{b['name']}"
        config = b.get("solutionConfig", {})
        # Personalize shows every hyperparameter, defaults included, some with a prefix.
        shown = {
            "training.bptt": "32",
            **{k: v for k, v in config.get("algorithmHyperParameters", {}).items()},
        }
        record = {**b, "solutionArn": arn, "solutionConfig": {**config}}
        if b["recipeArn"].endswith("user-personalization"):
            record["solutionConfig"]["algorithmHyperParameters"] = shown
        self._new("solution", arn, record)
        return {"solutionArn": arn}

    def _ListSolutions(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "solutionArn", "status", "recipeArn")
        return {"solutions": self._list("solution", keys, datasetGroupArn=b["datasetGroupArn"])}

    def _DescribeSolution(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"solution": self._describe("solution", b["solutionArn"])}

    def _CreateSolutionVersion(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{b['solutionArn']}/{next(self._ids):08x}"
        record = {"solutionVersionArn": arn, "solutionArn": b["solutionArn"], "trainingHours": 0.5}
        self._new("version", arn, record)
        return {"solutionVersionArn": arn}

    def _ListSolutionVersions(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("solutionVersionArn", "status", "creationDateTime")
        return {"solutionVersions": self._list("version", keys, solutionArn=b["solutionArn"])}

    def _DescribeSolutionVersion(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"solutionVersion": self._describe("version", b["solutionVersionArn"])}

    def _GetSolutionMetrics(self, b: dict[str, Any]) -> dict[str, Any]:
        assert self._get("version", b["solutionVersionArn"])["status"] == "ACTIVE"
        return {"solutionVersionArn": b["solutionVersionArn"], "metrics": METRICS}

    def _CreateCampaign(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = f"{PREFIX}:campaign/{b['name']}"
        version = self._get("version", b["solutionVersionArn"])
        assert version["status"] == "ACTIVE", "campaigns need an ACTIVE solution version"
        self._new("campaign", arn, {**b, "campaignArn": arn, "solutionArn": version["solutionArn"]})
        return {"campaignArn": arn}

    def _ListCampaigns(self, b: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "campaignArn", "status")
        match = {"solutionArn": b["solutionArn"]} if "solutionArn" in b else {}  # optional
        return {"campaigns": self._list("campaign", keys, **match)}

    def _DescribeCampaign(self, b: dict[str, Any]) -> dict[str, Any]:
        shown = self._describe("campaign", b["campaignArn"])
        shown.pop("solutionArn", None)
        return {"campaign": shown}

    def _UpdateCampaign(self, b: dict[str, Any]) -> dict[str, Any]:
        record = self._get("campaign", b["campaignArn"])
        record.update({k: v for k, v in b.items() if k != "campaignArn"})
        # The campaign stays ACTIVE (it keeps serving); the update has its own status.
        now = datetime.fromtimestamp(next(self._clock), UTC)
        update = {k: v for k, v in b.items() if k != "campaignArn"}
        record["latestCampaignUpdate"] = {
            **update,
            "status": "UPDATE PENDING",
            "creationDateTime": now,
        }
        return {"campaignArn": b["campaignArn"]}


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _epoch(value: object) -> float:
    assert isinstance(value, datetime)
    return value.timestamp()


class FakeJobs:
    """Personalize's dataset import jobs, answered at `before-call` (moto, which every handler of
    `before-send` reaches, answers personalize's import calls with NotImplementedError): the
    serialised request is checked against the service model (maxima, patterns, enums), replies
    against the output shapes. Modelled rules:
    a job name that exists fails; INCREMENTAL is refused until a bulk import into the dataset
    has completed ("If you haven't imported bulk records into the dataset previously, you can
    only specify FULL"). Jobs stay CREATE PENDING until `complete()`."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.violations: list[str] = []
        self.refuse: str | None = None  # an error code to answer CreateDatasetImportJob with
        client = aws.client("personalize")
        self.model = client.meta.service_model
        for operation in ("ListDatasetImportJobs", "CreateDatasetImportJob"):
            client.meta.events.register(f"before-call.personalize.{operation}", self.call)

    def complete(self) -> None:
        self.status = dict.fromkeys(self.status, "ACTIVE")

    def call(self, params: dict[str, Any], model: Any, **_: Any) -> tuple[AWSResponse, Any]:
        operation = model.name
        body = json.loads(params["body"])
        problems = check("personalize", operation, body)
        if problems:
            self.violations += problems
            return _error("ValidationException", "; ".join(problems))
        denied = _denied(operation, body)
        if denied:
            return _error("AccessDeniedException", denied)
        if operation == "ListDatasetImportJobs":
            jobs = [
                {"jobName": n, "datasetImportJobArn": arn(n), "status": self.status[n]}
                for n, job in self.jobs.items()
                if job["datasetArn"] == body["datasetArn"]
            ]
            return self._ok(operation, {"datasetImportJobs": jobs})
        assert operation == "CreateDatasetImportJob", operation
        if body["jobName"] in self.jobs:
            return _error("ResourceAlreadyExistsException", "exists")
        if self.refuse:
            return _error(self.refuse, "refused")
        bulk = [n for n, j in self.jobs.items() if j["datasetArn"] == body["datasetArn"]]
        if body.get("importMode") == "INCREMENTAL" and not any(
            self.status[n] == "ACTIVE" for n in bulk
        ):
            message = "INCREMENTAL import mode is not allowed without a previous bulk import"
            return _error("InvalidInputException", message)
        self.jobs[body["jobName"]] = body
        self.status[body["jobName"]] = "CREATE PENDING"
        return self._ok(operation, {"datasetImportJobArn": arn(body["jobName"])})

    def _ok(self, operation: str, out: dict[str, Any]) -> tuple[AWSResponse, Any]:
        shape = self.model.operation_model(operation).output_shape
        assert not ParamValidator().validate(out, shape).has_errors()
        return AWSResponse("https://fake", 200, {}, None), out


def _error(code: str, message: str) -> tuple[AWSResponse, Any]:
    error = {"Error": {"Code": code, "Message": message}}
    return AWSResponse("https://fake", 400, {}, None), error


def arn(job: str) -> str:
    return f"{PREFIX}:dataset-import-job/{job}"


def _denied(operation: str, body: dict[str, Any]) -> str | None:
    """What the calling function's policy (tests.iam_support) does not allow, if one applies."""
    caller = iam_support.current()
    if caller is None:
        return None
    if operation == "ListDatasetImportJobs":  # no resource-level permission: "*"
        wanted = [("personalize:ListDatasetImportJobs", "*", None)]
    else:
        passed = {"iam:PassedToService": "personalize.amazonaws.com"}
        wanted = [
            ("personalize:CreateDatasetImportJob", arn(body["jobName"]), None),
            ("iam:PassRole", body["roleArn"], passed),
        ]
    for action, resource, context in wanted:
        if not caller.authorize(action, resource, context):
            return f"not authorized to perform {action} on {resource}"
    return None
