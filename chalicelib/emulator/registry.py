"""The emulator's resources (dataset groups, schemas, datasets, import jobs, event trackers,
solutions, solution versions, campaigns, filters, batch inference jobs) as the service describes
them, kept in one JSON file under the data directory so that they survive a restart.

Each record holds the fields of the service's Describe reply (timestamps as epoch seconds), plus
private fields under `_` that never leave the emulator (e.g. the engine's hyperparameters).
Every write is saved at once, atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.emulator.errors import not_found

PENDING, IN_PROGRESS, ACTIVE, FAILED = (
    "CREATE PENDING",
    "CREATE IN_PROGRESS",
    "ACTIVE",
    "CREATE FAILED",
)


@dataclass(frozen=True)
class Kind:
    name: str  # the operations' noun: CreateDatasetGroup, DescribeDatasetGroup, ...
    key: str  # the ARN member: datasetGroupArn
    described: str  # Describe's reply member: datasetGroup
    listed: str  # List's reply member: datasetGroups
    parent: str | None  # the List filter member, when there is one: datasetGroupArn


KINDS = {
    k.name: k
    for k in (
        Kind("DatasetGroup", "datasetGroupArn", "datasetGroup", "datasetGroups", None),
        Kind("Schema", "schemaArn", "schema", "schemas", None),
        Kind("Dataset", "datasetArn", "dataset", "datasets", "datasetGroupArn"),
        Kind(
            "DatasetImportJob",
            "datasetImportJobArn",
            "datasetImportJob",
            "datasetImportJobs",
            "datasetArn",
        ),
        Kind("EventTracker", "eventTrackerArn", "eventTracker", "eventTrackers", "datasetGroupArn"),
        Kind("Solution", "solutionArn", "solution", "solutions", "datasetGroupArn"),
        Kind(
            "SolutionVersion",
            "solutionVersionArn",
            "solutionVersion",
            "solutionVersions",
            "solutionArn",
        ),
        Kind("Campaign", "campaignArn", "campaign", "campaigns", "solutionArn"),
        Kind("Filter", "filterArn", "filter", "Filters", "datasetGroupArn"),
        Kind(
            "BatchInferenceJob",
            "batchInferenceJobArn",
            "batchInferenceJob",
            "batchInferenceJobs",
            "solutionVersionArn",
        ),
    )
}


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the service shows it: private fields left out."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


class Registry:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "registry.json"
        self.lock = threading.RLock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KINDS}
        if self.path.exists():
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            for name, records in saved.items():
                self.records.setdefault(name, {}).update(records)

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.records, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)

    def add(self, kind: str, record: dict[str, Any], status: str | None = PENDING) -> None:
        now = time.time()
        with self.lock:
            record.setdefault("creationDateTime", now)
            record["lastUpdatedDateTime"] = now
            if status is not None:
                record["status"] = status
            self.records[kind][record[KINDS[kind].key]] = record
            self.save()

    # Reads hand out copies taken under the lock: request threads and job threads share the
    # records, and a record updated while another thread iterates it would break that thread.

    def get(self, kind: str, arn: str) -> dict[str, Any]:
        found = self.find(kind, arn)
        if found is None:
            raise not_found(arn)
        return found

    def find(self, kind: str, arn: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.records[kind].get(arn)
            return None if found is None else dict(found)

    def update(self, kind: str, arn: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            record = self.records[kind].get(arn)
            if record is None:
                raise not_found(arn)
            record.update(fields)
            record["lastUpdatedDateTime"] = time.time()
            self.save()
            return dict(record)

    def remove(self, kind: str, arn: str) -> dict[str, Any]:
        with self.lock:
            record = self.records[kind].pop(arn, None)
            if record is None:
                raise not_found(arn)
            self.save()
            return record

    def all(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        """Records of `kind` whose fields equal `match`, oldest first (the service lists newest
        first: the caller reverses)."""
        with self.lock:
            found = [
                dict(r)
                for r in self.records[kind].values()
                if all(r.get(k) == v for k, v in match.items())
            ]
        found.sort(key=lambda r: r["creationDateTime"])
        return found

    def unfinished(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Resources a restart interrupted before they became ACTIVE or failed."""
        with self.lock:
            for kind, records in self.records.items():
                for record in list(records.values()):
                    update = record.get("latestCampaignUpdate") or {}
                    if record.get("status") in (PENDING, IN_PROGRESS) or update.get("status") in (
                        PENDING,
                        IN_PROGRESS,
                    ):
                        yield kind, dict(record)
