"""The asynchronous side of the emulator: every created resource moves CREATE PENDING →
CREATE IN_PROGRESS → ACTIVE (or CREATE FAILED with a `failureReason`) on a worker thread, doing
the resource's work on the way: an import job reads its CSV files from S3 (boto3, any endpoint)
into the dataset group's store, a solution version trains on the engine, a campaign loads its
model, a batch inference job answers its JSON-lines input and writes `<input>.out` to S3.

Heavy work (imports, training, batch jobs) runs one job at a time (the engine uses the cores);
the rest on a second worker. Resources a restart interrupted are taken up again (`resume`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.catalogue import normalise
from chalicelib.config import EventOptions, HpoConfig
from chalicelib.csvdata import CsvError, Validation, read_rows
from chalicelib.emulator.groups import KINDS_OF_RECIPE, Group, Groups, schema_fields
from chalicelib.emulator.registry import ACTIVE, FAILED, IN_PROGRESS, Registry
from chalicelib.engine.data import Interactions
from chalicelib.engine.training import train
from chalicelib.filters import FilterError

log = logging.getLogger("recs.emulator")
HEAVY = frozenset({"DatasetImportJob", "SolutionVersion", "BatchInferenceJob"})
MIN_IMPORTED_INTERACTIONS = 1000  # Personalize's minimum per interactions import job
DATASETS = {"INTERACTIONS": "interactions", "USERS": "users", "ITEMS": "items"}


class JobFailed(Exception):
    """The job fails with this message as its failureReason."""


def split_s3(path: str) -> tuple[str, str]:
    bucket, _, key = path.removeprefix("s3://").partition("/")
    return bucket, key


def s3_as(role_arn: str | None) -> Any:
    """An S3 client acting as the job's role, as Personalize reads and writes your bucket: the
    role is assumed through STS (at `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL`, like S3), so an
    S3 endpoint that checks IAM (moto with IAM authorization, AWS) checks the role's policy."""
    if not role_arn:
        return aws.client("s3")
    try:
        found = aws.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="personalize-emulator"
        )["Credentials"]
    except (ClientError, BotoCoreError) as exc:
        raise JobFailed(f"Personalize cannot assume the role {role_arn}: {exc}") from None
    import boto3  # noqa: PLC0415 - a development requirement, as the emulator is

    session = boto3.session.Session(
        aws_access_key_id=found["AccessKeyId"],
        aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"],
    )
    return session.client("s3")


def s3_objects(s3: Any, path: str) -> list[tuple[str, str]]:
    """The objects an s3:// path names: the object itself, or every object under a folder."""
    bucket, key = split_s3(path)
    if key and not key.endswith("/"):
        return [(bucket, key)]
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        found += [(bucket, o["Key"]) for o in page.get("Contents", []) if o["Size"] > 0]
    if not found:
        raise JobFailed(f"No files found at {path}.")
    return found


class Jobs:
    def __init__(self, registry: Registry, groups: Groups, step_seconds: float = 0.05) -> None:
        self.registry, self.groups, self.step = registry, groups, step_seconds
        self.stopped = threading.Event()
        self.light = ThreadPoolExecutor(2, thread_name_prefix="emulator")
        self.heavy = ThreadPoolExecutor(1, thread_name_prefix="emulator-train")

    def submit(self, kind: str, arn: str) -> None:
        (self.heavy if kind in HEAVY else self.light).submit(self.run, kind, arn)

    def resume(self) -> None:
        for kind, record in list(self.registry.unfinished()):
            from chalicelib.emulator.registry import KINDS  # noqa: PLC0415

            self.submit(kind, record[KINDS[kind].key])

    def shutdown(self, wait: bool = False) -> None:
        """Pending work is dropped (a restart takes it up again); with `wait`, the work already
        running is finished first, and none of it is recorded: the next start runs it again."""
        self.stopped.set()
        self.light.shutdown(wait=wait, cancel_futures=True)
        self.heavy.shutdown(wait=wait, cancel_futures=True)

    def run(self, kind: str, arn: str) -> None:
        record = self.registry.find(kind, arn)
        if record is None:
            return
        if kind == "Campaign" and record["status"] == ACTIVE:
            self._update_campaign(arn, record)
            return
        try:
            if self.stopped.wait(self.step):
                return
            self.registry.update(kind, arn, status=IN_PROGRESS)
            if self.stopped.wait(self.step):
                return
            work = getattr(self, f"_{kind}", None)
            extra = work(record) if work else {}
            if self.stopped.is_set():
                return
            self.registry.update(kind, arn, status=ACTIVE, **extra)
        except Exception as exc:  # every failure is the resource's failureReason
            if not isinstance(exc, JobFailed | CsvError | FilterError | ValueError):
                log.exception("%s %s failed", kind, arn)
            if not self.stopped.is_set() and self.registry.find(kind, arn) is not None:
                self.registry.update(kind, arn, status=FAILED, failureReason=str(exc)[:1000])

    def _group(self, group_arn: str) -> Group:
        return self.groups.of(group_arn)

    # -- imports -----------------------------------------------------------------------------

    def _DatasetImportJob(self, job: dict[str, Any]) -> dict[str, Any]:
        dataset = self.registry.get("Dataset", job["datasetArn"])
        name = DATASETS.get(dataset["datasetType"])
        if name is None:
            raise JobFailed(f"The emulator does not import {dataset['datasetType']} datasets.")
        schema = json.loads(self.registry.get("Schema", dataset["schemaArn"])["schema"])
        fields = schema_fields(schema)
        store = self._group(dataset["datasetGroupArn"]).store
        validation = Validation()
        with tempfile.TemporaryDirectory() as tmp:
            s3 = s3_as(job.get("roleArn"))
            paths = list(self._download(s3, job["dataSource"]["dataLocation"], Path(tmp)))
            rows = _rows(paths, name, validation, fields)
            enough = name != "interactions"

            def keep() -> bool:
                return validation.error_count == 0 and (
                    enough or validation.rows >= MIN_IMPORTED_INTERACTIONS
                )

            full = job["importMode"] == "FULL"
            store.bulk_load(name, rows, replace=full, keep=keep, keep_events=True)
        if validation.error_count:
            raise JobFailed("Input CSV failed validation: " + "; ".join(validation.errors[:5]))
        if not keep():
            raise JobFailed(
                f"An interactions import needs at least {MIN_IMPORTED_INTERACTIONS} records; "
                f"the input has {validation.rows}."
            )
        return {}

    def _download(self, s3: Any, location: str, into: Path) -> Iterator[Path]:
        try:
            for n, (bucket, key) in enumerate(s3_objects(s3, location)):
                path = into / f"{n}-{key.rsplit('/', 1)[-1]}"
                s3.download_file(bucket, key, str(path))
                yield path
        except (ClientError, BotoCoreError) as exc:
            raise JobFailed(f"Cannot read {location}: {exc}") from None

    # -- training ----------------------------------------------------------------------------

    def _SolutionVersion(self, version: dict[str, Any]) -> dict[str, Any]:
        solution = self.registry.get("Solution", version["solutionArn"])
        group = self._group(version["datasetGroupArn"])
        max_seq = group.store.max_seq()
        data = Interactions.from_rows(group.store.interactions(max_seq))
        hpo = HpoConfig.model_validate(solution["_hpo"]) if solution.get("_hpo") else None
        result = train(
            solution["_recipe"],
            dict(solution["_params"]),
            data,
            events=EventOptions.model_validate(solution["_events"]),
            hpo=hpo,
        )
        metadata = {"version_id": version["_versionId"], "solution": version["solutionArn"]}
        result.model.save(group.model_path(version["_versionId"]), metadata)
        extra: dict[str, Any] = {
            "_metrics": result.metrics,
            "_maxSeq": max_seq,
            "trainingHours": round(result.seconds / 3600, 6),
        }
        if result.tuning is not None:
            # A value left None is the engine's default kept (no trial beat it significantly).
            best = {k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in result.tuning.best.items() if v is not None}  # fmt: skip
            extra["tunedHPOParams"] = {"algorithmHyperParameters": best}
        return extra

    # -- campaigns ---------------------------------------------------------------------------

    def _Campaign(self, campaign: dict[str, Any]) -> dict[str, Any]:
        version = self.registry.get("SolutionVersion", campaign["solutionVersionArn"])
        self._group(version["datasetGroupArn"]).served(version)  # the model loads
        return {}

    def _update_campaign(self, arn: str, campaign: dict[str, Any]) -> None:
        update = dict(campaign["latestCampaignUpdate"])
        try:
            if self.stopped.wait(self.step):
                return
            update["status"] = IN_PROGRESS
            self.registry.update("Campaign", arn, latestCampaignUpdate=dict(update))
            if self.stopped.wait(self.step):
                return
            version = self.registry.get("SolutionVersion", update["solutionVersionArn"])
            self._group(version["datasetGroupArn"]).served(version)
            if self.stopped.is_set():
                return
            update["status"] = ACTIVE
            fields = {k: update[k] for k in ("solutionVersionArn", "minProvisionedTPS")}
            self.registry.update(
                "Campaign",
                arn,
                campaignConfig=update["campaignConfig"],
                latestCampaignUpdate=update,
                **fields,
            )
        except Exception as exc:  # the campaign keeps serving its current version
            update.update(status=FAILED, failureReason=str(exc)[:1000])
            if self.registry.find("Campaign", arn) is not None:
                self.registry.update("Campaign", arn, latestCampaignUpdate=update)

    # -- batch inference ---------------------------------------------------------------------

    def _BatchInferenceJob(self, job: dict[str, Any]) -> dict[str, Any]:
        version = self.registry.get("SolutionVersion", job["solutionVersionArn"])
        group = self._group(version["datasetGroupArn"])
        served = group.served(version)
        expression = None
        if job.get("filterArn"):
            expression = self.registry.get("Filter", job["filterArn"])["filterExpression"]
        s3 = s3_as(job["roleArn"])
        out_bucket, out_prefix = split_s3(job["jobOutput"]["s3DataDestination"]["path"])
        if out_prefix and not out_prefix.endswith("/"):
            out_prefix += "/"
        with tempfile.TemporaryDirectory() as tmp:
            try:
                source = job["jobInput"]["s3DataSource"]["path"]
                for path in self._download(s3, source, Path(tmp)):
                    out = path.with_name(path.name + ".out")
                    with path.open(encoding="utf-8") as src, out.open("w") as dst:
                        for raw in src:
                            if raw.strip():
                                answer = answer_line(
                                    group, served, raw, job["numResults"], expression
                                )
                                dst.write(json.dumps(answer) + "\n")
                    name = path.name.split("-", 1)[1] + ".out"
                    s3.upload_file(str(out), out_bucket, out_prefix + name)
            except (ClientError, BotoCoreError) as exc:
                raise JobFailed(f"Cannot write to {out_bucket}/{out_prefix}: {exc}") from None
        return {}


def _rows(
    paths: list[Path], dataset: str, validation: Validation, fields: dict[str, str]
) -> Iterator[tuple[Any, ...]]:
    for path in paths:
        part = Validation()
        for row in read_rows(path, dataset, part, fields):  # type: ignore[arg-type]
            yield (row[0], normalise(row[1])) if dataset == "items" else row
        validation.rows += part.rows
        validation.error_count += part.error_count
        validation.errors += [f"{path.name.split('-', 1)[1]}: {e}" for e in part.errors]


def answer_line(
    group: Group, served: Any, raw: str, n: int, expression: str | None
) -> dict[str, Any]:
    """One line of a batch inference input, answered as the service writes it."""
    given: Any = raw.strip()
    try:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise ValueError("a line must be a JSON object")
        kinds = KINDS_OF_RECIPE[served.recipe]
        user, item = given.get("userId"), given.get("itemId")
        values = given.get("filterValues")
        if user is not None and "itemList" in given and "rank" in kinds:
            mask = group.mask(served, expression, values, str(user))
            ranked = group.rank(served, str(user), [str(i) for i in given["itemList"]], mask)
            output = {"recommendedItems": ranked.item_ids, "scores": ranked.scores}
        elif user is not None and "recommend" in kinds:
            mask = group.mask(served, expression, values, str(user))
            ranked = group.recommend(served, str(user), n, mask)
            output = {"recommendedItems": ranked.item_ids, "scores": ranked.scores}
        elif item is not None and "related" in kinds:
            mask = group.mask(served, expression, values, None, str(item))
            output = {"recommendedItems": group.related(served, str(item), n, mask) or []}
        else:
            raise ValueError(f"a {served.recipe} solution cannot answer this line")
        return {"input": given, "output": output, "error": None}
    except (ValueError, FilterError) as exc:
        return {"input": given, "output": None, "error": str(exc)}
