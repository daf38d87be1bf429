"""The control plane (`AmazonPersonalize.<Operation>`): Describe, List and Delete of every
resource kind, from one table (`registry.KINDS`); the creation of dataset groups, schemas,
datasets, event trackers and filters, with the service's rules and limits. Solutions, versions,
campaigns, import and batch jobs are `workflow`'s.

Replies are cut to the members of the operation's output shape in botocore's service model, so
that nothing the service would not say is said.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from chalicelib.emulator.errors import ServiceError, exists, in_use, invalid, limit
from chalicelib.emulator.groups import Groups
from chalicelib.emulator.jobs import Jobs
from chalicelib.emulator.model import service_model
from chalicelib.emulator.registry import ACTIVE, KINDS, Registry, public
from chalicelib.filters import FilterError
from chalicelib.filters.language import parse

Handler = Callable[[dict[str, Any]], dict[str, Any]]
# The region of the request being answered (its SigV4 credential scope), set by the server.
REQUEST_REGION: ContextVar[str | None] = ContextVar("REQUEST_REGION", default=None)
DATASET_TYPES = {
    "INTERACTIONS": "interactions",
    "USERS": "users",
    "ITEMS": "items",
    "ACTIONS": None,  # accepted by the service; the engine has no actions
    "ACTION_INTERACTIONS": None,
}
REQUIRED_FIELDS = {"interactions": ("USER_ID", "ITEM_ID", "TIMESTAMP"), "users": ("USER_ID",)}
REQUIRED_FIELDS["items"] = ("ITEM_ID",)
MAX_FILTERS_PER_GROUP = 10
MAX_FILTER_FIELDS_PER_GROUP = 10


def shaped(record: dict[str, Any], shape: Any) -> dict[str, Any]:
    """`record` cut to the members of a structure `shape`."""
    return {k: v for k, v in public(record).items() if k in shape.members and v is not None}


class Control:
    def __init__(
        self, registry: Registry, groups: Groups, jobs: Jobs, region: str, account: str
    ) -> None:
        self.registry, self.groups, self.jobs = registry, groups, jobs
        self.region, self.account = region, account
        self.model = service_model("personalize")
        self.handlers: dict[str, Handler] = {}

    def arn(self, kind: str, name: str) -> str:
        # The region the request was signed for, as the service's ARNs carry it.
        region = REQUEST_REGION.get() or self.region
        return f"arn:aws:personalize:{region}:{self.account}:{kind}/{name}"

    def handle(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get(operation) or getattr(self, operation, None)
        if handler is not None:
            return dict(handler(body))
        for verb, generic in (
            ("Describe", self.describe),
            ("List", self.list),
            ("Delete", self.delete),
        ):
            noun = operation.removeprefix(verb)
            if operation.startswith(verb) and noun.rstrip("s") in KINDS:
                return generic(noun.rstrip("s"), operation, body)
        raise ServiceError(
            "UnknownOperationException", f"The emulator does not implement {operation}."
        )

    # -- generic operations ------------------------------------------------------------------

    def describe(self, kind: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        k = KINDS[kind]
        record = self.registry.get(kind, body[k.key])
        shape = self.model.operation_model(operation).output_shape.members[k.described]
        described = shaped(record, shape)
        if kind == "Solution":
            versions = self.registry.all("SolutionVersion", solutionArn=record["solutionArn"])
            if versions:
                summary = shape.members["latestSolutionVersion"]
                described["latestSolutionVersion"] = shaped(versions[-1], summary)
        return {k.described: described}

    def list(self, kind: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        k = KINDS[kind]
        match = {}
        if k.parent and body.get(k.parent):
            self.registry.get(_kind_of(k.parent), body[k.parent])
            match[k.parent] = body[k.parent]
        records = self.registry.all(kind, **match)[::-1]  # newest first
        start = _offset(body.get("nextToken"))
        size = int(body.get("maxResults") or 100)
        page = records[start : start + size]
        summary = self.model.operation_model(operation).output_shape.members[k.listed].member
        out: dict[str, Any] = {k.listed: [shaped(r, summary) for r in page]}
        if start + size < len(records):
            out["nextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return out

    def delete(self, kind: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        arn = body[KINDS[kind].key]
        record = self.registry.get(kind, arn)
        if record.get("status") not in (ACTIVE, "CREATE FAILED", None):
            raise in_use(f"{arn} is {record['status']}: it can be deleted once it is ACTIVE.")
        blockers = {
            "DatasetGroup": [
                (other, "datasetGroupArn")
                for other in ("Dataset", "Solution", "EventTracker", "Filter")
            ],
            "Schema": [("Dataset", "schemaArn")],
            "Solution": [("Campaign", "solutionArn")],
        }
        for other, key in blockers.get(kind, []):
            if self.registry.all(other, **{key: arn}):
                raise in_use(f"{arn} is used by a {other}: delete that first.")
        if kind == "Dataset":
            busy = self.registry.all("DatasetImportJob", datasetArn=arn)
            if any(j["status"] != ACTIVE and j["status"] != "CREATE FAILED" for j in busy):
                raise in_use(f"{arn} has an import job in progress.")
            dataset = DATASET_TYPES[record["datasetType"].upper()]
            if dataset:
                store = self.groups.of(record["datasetGroupArn"]).store
                store.bulk_load(dataset, [], replace=True, keep=lambda: True)
        if kind == "Solution":
            for version in self.registry.all("SolutionVersion", solutionArn=arn):
                self.registry.remove("SolutionVersion", version["solutionVersionArn"])
        self.registry.remove(kind, arn)
        if kind == "DatasetGroup":
            self.groups.drop(arn)
        return {}

    # -- dataset groups, schemas, datasets ---------------------------------------------------

    def create(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        arn = record[KINDS[kind].key]
        if self.registry.find(kind, arn) is not None:
            raise exists(arn)
        schema_kinds = ("Schema",)
        self.registry.add(kind, record, status=None if kind in schema_kinds else "CREATE PENDING")
        if kind not in schema_kinds:
            self.jobs.submit(kind, arn)
        return record

    def CreateDatasetGroup(self, b: dict[str, Any]) -> dict[str, Any]:
        arn = self.arn("dataset-group", b["name"])
        record = {"name": b["name"], "datasetGroupArn": arn}
        for key in ("roleArn", "kmsKeyArn", "domain"):
            if key in b:
                record[key] = b[key]
        self.create("DatasetGroup", record)
        return {"datasetGroupArn": arn, **({"domain": b["domain"]} if "domain" in b else {})}

    def CreateSchema(self, b: dict[str, Any]) -> dict[str, Any]:
        try:
            avro = json.loads(b["schema"])
        except ValueError:
            raise invalid("The schema is not valid JSON.") from None
        if not isinstance(avro, dict) or avro.get("type") != "record":
            raise invalid('The schema must be an Avro record ("type": "record").')
        fields = avro.get("fields")
        if not isinstance(fields, list) or not fields:
            raise invalid("The schema must list its fields.")
        for field in fields:
            if not isinstance(field, dict) or "name" not in field or "type" not in field:
                raise invalid("Every schema field needs a name and a type.")
        arn = self.arn("schema", b["name"])
        record = {"name": b["name"], "schemaArn": arn, "schema": b["schema"]}
        if "domain" in b:
            record["domain"] = b["domain"]
        self.create("Schema", record)
        return {"schemaArn": arn}

    def _check_schema(self, schema_arn: str, dataset_type: str) -> None:
        schema = json.loads(self.registry.get("Schema", schema_arn)["schema"])
        names = {str(f["name"]).upper() for f in schema["fields"]}
        dataset = DATASET_TYPES[dataset_type]
        if dataset is None:
            return
        missing = [f for f in REQUIRED_FIELDS[dataset] if f not in names]
        if missing:
            raise invalid(
                f"The {dataset_type} schema lacks the required field(s) {', '.join(missing)}."
            )
        if dataset != "interactions" and len(names) < 2:
            raise invalid(f"A {dataset_type} schema needs at least one metadata field.")

    def CreateDataset(self, b: dict[str, Any]) -> dict[str, Any]:
        group = self.registry.get("DatasetGroup", b["datasetGroupArn"])
        kind = b["datasetType"].upper()
        if kind not in DATASET_TYPES:
            raise invalid(f"Unknown datasetType {b['datasetType']}.")
        self._check_schema(b["schemaArn"], kind)
        arn = self.arn("dataset", f"{group['name']}/{kind}")
        record = {
            "name": b["name"],
            "datasetArn": arn,
            "datasetGroupArn": group["datasetGroupArn"],
            "datasetType": kind,
            "schemaArn": b["schemaArn"],
        }
        self.create("Dataset", record)
        return {"datasetArn": arn}

    def UpdateDataset(self, b: dict[str, Any]) -> dict[str, Any]:
        record = self.registry.get("Dataset", b["datasetArn"])
        if record["status"] != ACTIVE:
            raise in_use(f"{b['datasetArn']} is {record['status']}.")
        self._check_schema(b["schemaArn"], record["datasetType"])
        self.registry.update("Dataset", b["datasetArn"], schemaArn=b["schemaArn"])
        return {"datasetArn": b["datasetArn"]}

    def CreateEventTracker(self, b: dict[str, Any]) -> dict[str, Any]:
        group = b["datasetGroupArn"]
        self.registry.get("DatasetGroup", group)
        if self.registry.all("EventTracker", datasetGroupArn=group):
            raise exists(f"An event tracker of {group}")
        arn = self.arn("event-tracker", uuid.uuid4().hex[:8])
        tracking = str(uuid.uuid4())
        record = {"name": b["name"], "eventTrackerArn": arn, "datasetGroupArn": group}
        record["trackingId"] = tracking
        record["accountId"] = self.account
        self.create("EventTracker", record)
        return {"eventTrackerArn": arn, "trackingId": tracking}

    def CreateFilter(self, b: dict[str, Any]) -> dict[str, Any]:
        group = b["datasetGroupArn"]
        self.registry.get("DatasetGroup", group)
        try:
            parsed = parse(b["filterExpression"])
        except FilterError as exc:
            raise invalid(f"Invalid filter expression: {exc}") from None
        others = self.registry.all("Filter", datasetGroupArn=group)
        if len(others) >= MAX_FILTERS_PER_GROUP:
            raise limit(f"A dataset group has at most {MAX_FILTERS_PER_GROUP} filters.")
        fields = set(parsed.fields)
        for other in others:
            fields |= parse(other["filterExpression"]).fields
        if len(fields) > MAX_FILTER_FIELDS_PER_GROUP:
            raise limit(
                f"The filters of a dataset group use at most {MAX_FILTER_FIELDS_PER_GROUP} "
                f"distinct fields; this one would make {len(fields)}."
            )
        arn = self.arn("filter", b["name"])
        record = {
            "name": b["name"],
            "filterArn": arn,
            "datasetGroupArn": group,
            "filterExpression": b["filterExpression"],
        }
        self.create("Filter", record)
        return {"filterArn": arn}


def _kind_of(key: str) -> str:
    """`datasetGroupArn` → `DatasetGroup`."""
    return key[0].upper() + key[1:].removesuffix("Arn")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.b64decode(token, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ServiceError("InvalidNextTokenException", "The next token is not valid.") from None
