"""Bulk import on AWS: a CSV file dropped under `imports/<dataset>/` is streamed from S3,
validated against the dataset's schema, reported in `reports/<key>.json`, and, when good, becomes
one Personalize dataset import job; item files also refresh the DynamoDB item table.

S3 delivers notifications at least once, so the job name is derived from the key and the object's
version (or ETag): a repeated notification finds the report of that version, or at worst meets
Personalize's ResourceAlreadyExistsException, and starts nothing new.

Personalize takes INCREMENTAL only into a dataset that has had a bulk import, so the first import
into each dataset is FULL whatever was asked. Anything that stops a good file from becoming a job
(Personalize refusing it, a missing setting, S3 failing) is an `error`: reported under
`reports/`, logged and counted (the `ImportFailures` metric), and the `import_s3` Lambda then
raises (`chalicelib.handlers.imports`), so that Lambda retries the event and, after its retries,
hands it to the function's on-failure destination (`python -m deploy` sets it) rather than
dropping it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from chalicelib import aws
from chalicelib.config import ProjectConfig
from chalicelib.csvdata import CsvError, Validation, read_text
from chalicelib.providers.personalize import arns, s3files
from chalicelib.settings import Settings
from chalicelib.vocabulary import DATASETS, Dataset, ImportReport, Progress

log = logging.getLogger("recs.imports")

PREFIX = "imports/"
MIN_INTERACTIONS = 1_000  # Personalize refuses to train on fewer
# Import jobs are named `<dataset group[:20]>-...`, so that IAM can scope CreateDatasetImportJob
# to one stage's jobs (`dataset-import-job/<prefix>-*`, see deploy/policies.py).
JOB_PREFIX_CHARS = 20
RUNNING = ("CREATE PENDING", "CREATE IN_PROGRESS")
METRIC_NAMESPACE = "BrazePersonalizeRecs"
Status = Literal["started", "rejected", "duplicate", "ignored", "error"]


@dataclass
class ImportResult:
    status: Status
    key: str
    dataset: str | None = None
    version: str | None = None
    mode: str | None = None
    rows: int = 0
    valid_rows: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    job_name: str | None = None
    job_arn: str | None = None
    mode_reason: str | None = None
    data_location: str | None = None
    items_loaded: int | None = None
    report_key: str | None = None
    checked_at: float = field(default_factory=time.time)


def upload(bucket: str, dataset: str, path: Path) -> str:
    """Put a local file where `import_s3` looks (imports/<dataset>/<name>); returns its key."""
    key = f"{PREFIX}{dataset}/{path.name}"
    if not path.is_file() or dataset_of(key) != dataset:
        raise ValueError(f"{path} is not a .csv or .csv.gz file")
    aws.client("s3").upload_file(str(path), bucket, key)
    return key


def dataset_of(key: str) -> Dataset | None:
    """`imports/items/2024/catalogue.csv.gz` is an items file; anything else is not ours."""
    parts = key.split("/")
    if len(parts) < 3 or f"{parts[0]}/" != PREFIX or parts[1] not in DATASETS:
        return None
    if not (key.endswith(".csv") or key.endswith(".csv.gz")) or not parts[-1]:
        return None
    return next(d for d in DATASETS if d == parts[1])


def mode_of(key: str, default: str) -> Literal["FULL", "INCREMENTAL"]:
    """FULL when the key asks (`imports/items/full/...` or `*.full.csv`), else the setting."""
    name = key.rsplit("/", 1)[-1]
    asked = "/full/" in key or ".full." in name
    return "FULL" if asked or default.upper() == "FULL" else "INCREMENTAL"


def job_prefix(dataset_group: str) -> str:
    """The start of every import job name of a dataset group (IAM scopes on it)."""
    return dataset_group[:JOB_PREFIX_CHARS]


def job_name(dataset: str, key: str, version: str, dataset_group: str = "recs") -> str:
    """At most 63 characters of [A-Za-z0-9_-], the same for the same object version."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".csv")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:19].strip("-_") or "file"
    digest = hashlib.blake2b(f"{key}\x00{version}".encode(), digest_size=8).hexdigest()
    return f"{job_prefix(dataset_group)}-{dataset[:5]}-{stem}-{digest}"


def _rows(
    bucket: str,
    *,
    key: str,
    version: str | None,
    dataset: Dataset,
    schema: dict[str, str] | None,
    validation: Validation,
) -> Iterator[tuple[Any, ...]]:
    with s3files.open_text(bucket, key, version) as text:
        yield from read_text(text, dataset, validation, schema)


def read_report(bucket: str, report_key: str) -> dict[str, Any] | None:
    """The report of an earlier notification, None when there is none. S3 says "no such key"
    (404) only to a caller allowed s3:ListBucket; without it the answer is 403, which is raised
    as the permission problem it is."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=report_key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    found: dict[str, Any] = json.loads(body)
    return found


def _write_report(bucket: str, result: ImportResult) -> None:
    body = json.dumps(asdict(result), ensure_ascii=False, indent=1).encode()
    aws.client("s3").put_object(
        Bucket=bucket, Key=result.report_key, Body=body, ContentType="application/json"
    )


def import_object(
    bucket: str,
    key: str,
    settings: Settings,
    config: ProjectConfig,
    *,
    version: str | None = None,
    mode: str | None = None,
    progress: Progress | None = None,
    again: bool = False,
) -> ImportResult:
    """Validate s3://bucket/key and start its import job; the report says what happened.

    A version reported before is not handled twice, unless the report says `error`, or says
    `rejected` and `again` asks (`replay-imports`: the file's schema in the configuration may
    have been fixed since)."""
    dataset = dataset_of(key)
    if dataset is None:
        return ImportResult("ignored", key, reason="not a .csv or .csv.gz under imports/<dataset>/")
    s3 = aws.client("s3")
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version else {})
    head = s3.head_object(**params)
    version = version or head.get("VersionId") or head["ETag"].strip('"')
    report_key = f"reports/{key}.json"
    result = ImportResult("rejected", key, dataset, version, report_key=report_key)
    result.mode = mode_of(key, mode or settings.import_mode)
    previous = read_report(bucket, report_key)
    settled = ("started", "duplicate") if again else ("started", "duplicate", "rejected")
    if previous and previous.get("version") == version and previous.get("status") in settled:
        return ImportResult(
            "duplicate",
            key,
            dataset,
            version,
            reason="already handled",
            job_arn=previous.get("job_arn"),
            report_key=result.report_key,
        )

    validation = Validation()
    try:
        for n, _row in enumerate(
            _rows(
                bucket,
                key=key,
                version=head.get("VersionId"),
                dataset=dataset,
                schema=config.schemas.get(dataset),
                validation=validation,
            ),
            start=1,
        ):
            if progress and n % 50_000 == 0:
                progress(f"validating {dataset}", n, None)
    except CsvError as exc:
        result.reason = str(exc)
    result.rows, result.valid_rows = validation.rows, validation.valid
    result.error_count, result.errors = validation.error_count, validation.details
    if not result.reason and validation.error_count:
        result.reason = f"{validation.error_count} row(s) are invalid"
    if not result.reason and dataset == "interactions" and validation.valid < MIN_INTERACTIONS:
        result.reason = (
            f"{validation.valid} interactions; Personalize needs at least {MIN_INTERACTIONS:,}"
        )
    if result.reason:
        _write_report(bucket, result)
        return result
    try:
        _start(
            bucket,
            key,
            version=head.get("VersionId"),
            dataset=dataset,
            settings=settings,
            result=result,
        )
    except arns.MissingSettingError as exc:
        result.status, result.reason = "error", str(exc)
    except ImportBlockedError as exc:
        result.status, result.reason = "error", str(exc)
    if result.status == "started" and dataset == "items" and settings.items_table:
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        rows = _rows(
            bucket,
            key=key,
            version=head.get("VersionId"),
            dataset=dataset,
            schema=config.schemas.get(dataset),
            validation=Validation(),
        )
        result.items_loaded = items_table.load_items(settings.items_table, rows)
    _write_report(bucket, result)
    log.info(json.dumps({k: v for k, v in asdict(result).items() if k != "errors"}))
    return result


def as_report(dataset: Dataset, bucket: str, result: ImportResult) -> ImportReport:
    """The one report of an import both providers print (the `import` command's JSON)."""
    errors = [f"row {e['row']}, {e['column']}: {e['reason']}" for e in result.errors]
    if result.reason:
        errors.insert(0, result.reason)
    status = result.status if result.status != "ignored" else "rejected"
    accepted = status in ("started", "duplicate")
    return ImportReport(
        dataset,
        status,
        result.rows,
        result.valid_rows if accepted else 0,
        errors,
        source=f"s3://{bucket}/{result.key}",
        version=result.version,
        job=result.job_arn,
        mode=result.mode,
        items_loaded=result.items_loaded,
        report=f"s3://{bucket}/{result.report_key}" if result.report_key else None,
    )


class ImportBlockedError(Exception):
    """Personalize cannot take this file now (the dataset's first import is still running)."""


def _first_import(client: Any, dataset_arn: str) -> bool:
    """True when the dataset has never completed a bulk import (Personalize then takes FULL
    only); ImportBlockedError while its first one is still running (FULL would replace it and
    INCREMENTAL is refused)."""
    running = None
    token: str | None = None
    while True:
        page = client.list_dataset_import_jobs(
            datasetArn=dataset_arn, maxResults=100, **({"nextToken": token} if token else {})
        )
        for job in page.get("datasetImportJobs", []):
            if job.get("status") == "ACTIVE":
                return False
            if job.get("status") in RUNNING:
                running = job.get("datasetImportJobArn")
        token = page.get("nextToken")
        if not token:
            break
    if running:
        raise ImportBlockedError(
            f"the dataset's first import ({running}) is still running: Personalize takes "
            "INCREMENTAL imports only after it completes, and FULL would replace it"
        )
    return True


def _start(
    bucket: str,
    key: str,
    *,
    version: str | None,
    dataset: Dataset,
    settings: Settings,
    result: ImportResult,
) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    dataset_arn = arns.dataset_arn(settings.dataset_group_arn, dataset)
    if not settings.import_role_arn:
        raise arns.MissingSettingError("RECS_IMPORT_ROLE_ARN is not set")
    group = arns.dataset_group_name(settings.dataset_group_arn)
    assert result.version is not None
    result.job_name = job_name(dataset, key, result.version, group)
    client = aws.client("personalize")
    if result.mode == "INCREMENTAL" and _first_import(client, dataset_arn):
        result.mode = "FULL"
        result.mode_reason = "the first bulk import into a dataset can only be FULL"
    source = (
        s3files.stage(bucket, key, version, result.job_name)
        if s3files.needs_staging(bucket, key, version)
        else key
    )
    result.data_location = f"s3://{bucket}/{source}"
    try:
        reply = client.create_dataset_import_job(
            jobName=result.job_name,
            datasetArn=dataset_arn,
            dataSource={"dataLocation": result.data_location},
            roleArn=settings.import_role_arn,
            importMode=result.mode,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceAlreadyExistsException":
            result.status, result.reason = "duplicate", "an import job of this version exists"
            return
        result.status = "error"
        result.reason = (
            f"Personalize refused the import job: {error.get('Code')}: {error.get('Message')}"
        )
        return
    result.status, result.job_arn = "started", reply["datasetImportJobArn"]


def _count_failure(result: ImportResult) -> None:
    """One log line and one CloudWatch embedded metric (`ImportFailures`, by dataset)."""
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Dataset"]],
                    "Metrics": [{"Name": "ImportFailures", "Unit": "Count"}],
                }
            ],
        },
        "Dataset": result.dataset or "unknown",
        "ImportFailures": 1,
    }
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    log.error(json.dumps({"event": "import_failed", "key": result.key, "reason": result.reason}))


def import_notified(
    bucket: str, key: str, version: str | None, settings: Settings, config: ProjectConfig
) -> ImportResult:
    """`import_object` for one S3 notification, never raising: a failure of S3 or anything else
    becomes an `error` result, reported under `reports/`; every error is logged and counted."""
    try:
        result = import_object(bucket, key, settings, config, version=version)
    except Exception as exc:  # S3 or anything else: reported and counted
        result = ImportResult("error", key, dataset_of(key), version)
        result.reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        result.report_key = f"reports/{key}.json"
        try:
            _write_report(bucket, result)
        except Exception:
            log.exception("no report written for s3://%s/%s", bucket, key)
    if result.status == "error":
        _count_failure(result)
    return result
