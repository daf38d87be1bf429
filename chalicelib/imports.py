"""Bulk import on AWS: a CSV file dropped under `imports/<dataset>/` is streamed from S3,
validated against the dataset's schema, reported in `reports/<key>.json`, and, when good, becomes
one Personalize dataset import job; item files also refresh the DynamoDB item table.

S3 delivers notifications at least once, so the job name is derived from the key and the object's
version (or ETag): a repeated notification finds the report of that version, or at worst meets
Personalize's ResourceAlreadyExistsException, and starts nothing new.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import unquote_plus

from chalicelib import aws
from chalicelib.config import ProjectConfig
from chalicelib.csvdata import CsvError, Dataset, Validation, read_text, text_stream
from chalicelib.providers.personalize import arns
from chalicelib.settings import Settings

log = logging.getLogger("recs.imports")

PREFIX = "imports/"
DATASETS: tuple[Dataset, ...] = ("interactions", "users", "items")
MIN_INTERACTIONS = 1_000  # Personalize refuses to train on fewer
Status = Literal["started", "rejected", "duplicate", "ignored", "error"]
Progress = Callable[[str, int, int | None], None]


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
    return parts[1]  # type: ignore[return-value]


def mode_of(key: str, default: str) -> Literal["FULL", "INCREMENTAL"]:
    """FULL when the key asks (`imports/items/full/...` or `*.full.csv`), else the setting."""
    name = key.rsplit("/", 1)[-1]
    asked = "/full/" in key or ".full." in name
    return "FULL" if asked or default.upper() == "FULL" else "INCREMENTAL"


def job_name(dataset: str, key: str, version: str) -> str:
    """At most 63 characters of [A-Za-z0-9_-], the same for the same object version."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".csv")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:32] or "file"
    digest = hashlib.blake2b(f"{key}\x00{version}".encode(), digest_size=8).hexdigest()
    return f"{dataset[:5]}-{stem}-{digest}"


class _S3Raw(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so gzip and TextIOWrapper read it in chunks."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _open(bucket: str, key: str, version: str | None) -> IO[str]:
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version else {})
    body = aws.client("s3").get_object(**params)["Body"]
    raw = io.BufferedReader(_S3Raw(body), buffer_size=1 << 20)
    return text_stream(raw, gzipped=key.endswith(".gz"))


def _rows(
    bucket: str,
    *,
    key: str,
    version: str | None,
    dataset: Dataset,
    schema: dict[str, str] | None,
    validation: Validation,
) -> Iterator[tuple[Any, ...]]:
    with _open(bucket, key, version) as text:
        yield from read_text(text, dataset, validation, schema)


def _read_report(bucket: str, report_key: str) -> dict[str, Any] | None:
    s3 = aws.client("s3")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _write_report(bucket: str, result: ImportResult) -> None:
    body = json.dumps(asdict(result), ensure_ascii=False, indent=1).encode()
    aws.client("s3").put_object(
        Bucket=bucket, Key=result.report_key, Body=body, ContentType="application/json"
    )


def _needs_staging(bucket: str, key: str, version: str | None) -> bool:
    """Personalize reads plain UTF-8 CSV: a gzipped file or one with a byte-order mark is
    staged as a plain copy (streamed, never held whole)."""
    if key.endswith(".gz"):
        return True
    params = {"Bucket": bucket, "Key": key, "Range": "bytes=0-2"}
    head = aws.client("s3").get_object(**params | ({"VersionId": version} if version else {}))
    return bool(head["Body"].read() == b"\xef\xbb\xbf")


class _Encoded(io.RawIOBase):
    """A text stream re-encoded as UTF-8 bytes (without a BOM) for a streamed upload."""

    def __init__(self, text: IO[str]) -> None:
        self._text, self._pending = text, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer):
            chunk = self._text.read(1 << 16)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def _stage(bucket: str, key: str, version: str | None, name: str) -> str:
    staged = f"staged/{name}.csv"
    with _open(bucket, key, version) as text:
        aws.client("s3").upload_fileobj(io.BufferedReader(_Encoded(text)), bucket, staged)
    return staged


def import_object(
    bucket: str,
    key: str,
    settings: Settings,
    config: ProjectConfig,
    *,
    version: str | None = None,
    mode: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Validate s3://bucket/key and start its import job; the report says what happened."""
    dataset = dataset_of(key)
    if dataset is None:
        return ImportResult("ignored", key, reason="not a .csv or .csv.gz under imports/<dataset>/")
    s3 = aws.client("s3")
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version else {})
    head = s3.head_object(**params)
    version = version or head.get("VersionId") or head["ETag"].strip('"')
    result = ImportResult("rejected", key, dataset, version, report_key=f"reports/{key}.json")
    result.mode = mode_of(key, mode or settings.import_mode)
    result.job_name = job_name(dataset, key, version)
    previous = _read_report(bucket, result.report_key)
    if previous and previous.get("version") == version and previous.get("status") != "error":
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
    assert result.job_name is not None
    source = (
        _stage(bucket, key, version, result.job_name)
        if _needs_staging(bucket, key, version)
        else key
    )
    result.data_location = f"s3://{bucket}/{source}"
    try:
        reply = aws.client("personalize").create_dataset_import_job(
            jobName=result.job_name,
            datasetArn=dataset_arn,
            dataSource={"dataLocation": result.data_location},
            roleArn=settings.import_role_arn,
            importMode=result.mode,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise
        result.status, result.reason = "duplicate", "an import job of this version exists"
        return
    result.status, result.job_arn = "started", reply["datasetImportJobArn"]


def handle_s3(
    event: dict[str, Any], settings: Settings, config: ProjectConfig
) -> list[ImportResult]:
    """The `import_s3` Lambda: every record of the notification (Chalice's S3Event reads only
    the first), keys URL-decoded as S3 sends them encoded."""
    results = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name", "")
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        version = s3.get("object", {}).get("versionId")
        results.append(import_object(bucket, key, settings, config, version=version))
    return results
