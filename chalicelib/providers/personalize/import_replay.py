"""`python -m chalicelib replay-imports`: the CSV files `import_s3` gave up on, read from its
on-failure destination (RECS_IMPORT_FAILURES_QUEUE), imported again as `import_s3` imports them,
and removed from the queue once imported.

Each message is Lambda's invocation record of one S3 event (`chalicelib.invocations`). Lambda
gives up on a good file that could not become an import job (Personalize refusing it, the
dataset's first import still running, a setting missing, S3 failing: `error` in its
reports/<key>.json), which a person fixes first; nothing waits on a lease, so every message is
due. Each file of the event is imported again, the object version the event announced: validated,
reported in reports/<key>.json and made one import job (`imports.import_object`). The message is
deleted only when every file is imported (`started`, or `duplicate`: its job exists already); it
stays, with the reason, when a file no longer exists, fails validation (`rejected`, its report's
rows included) or fails again (`error`). `failures_queue` reads and deletes, and shows what stays
again at once, so the queue's alarm keeps counting it.

A file whose key has had a newer version imported since (copied onto itself, the remedy before
this command) is not imported again: its rows came in with that version, and an older version
imported after a newer one would put back the rows it replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.config import ProjectConfig
from chalicelib.invocations import ImportReplay, S3File, iso, read_record
from chalicelib.providers.personalize import failures_queue, imports
from chalicelib.settings import Settings
from chalicelib.vocabulary import Dataset, ImportReport

# One message at a time, held as long as `import_s3` may take over one file (its
# lambda_timeout): a long file never lets another run of this command take the same message.
HOLD_SECONDS = 900
IMPORTED = ("started", "duplicate")


class _Gone(Exception):
    """The file (or the version the event announced) is no longer in the bucket."""


def replay(
    settings: Settings, config: ProjectConfig, *, dry_run: bool = False, drop: Sequence[str] = ()
) -> list[ImportReplay]:
    """Every message of the failures queue, each once (a dry run only reads them; those in
    `drop` are listed and deleted)."""
    return failures_queue.drain(
        settings.import_failures_queue,
        "RECS_IMPORT_FAILURES_QUEUE",
        lambda message_id, body, only_list: _replay_one(
            message_id, body, settings, config, only_list
        ),
        hold_seconds=HOLD_SECONDS,
        per_receive=1,
        dry_run=dry_run,
        drop=drop,
    )


def _replay_one(
    message_id: str, body: str, settings: Settings, config: ProjectConfig, dry_run: bool
) -> ImportReplay:
    try:
        given_up = read_record(
            body,
            lambda key: imports.dataset_of(key) is not None,  # what `import_s3` imports
            "CSV file under imports/<dataset>/",
        )
    except ValueError as exc:
        return ImportReplay(message_id, "unreadable", reason=str(exc))
    result = ImportReplay(
        message_id,
        "due",
        files=[f.uri for f in given_up.files],
        failed_at=iso(given_up.failed_at),
        reason=given_up.reason,
        lambda_error=given_up.reason,
    )
    if dry_run:
        return result
    left = []
    for file in given_up.files:
        try:
            report = _import_again(file, settings, config)
        except _Gone as exc:
            left.append(f"{file.uri}: {exc}")
            continue
        except (ClientError, BotoCoreError) as exc:  # a missing permission, S3 failing
            left.append(f"{file.uri}: {exc}")
            continue
        result.reports.append(report)
        if report.status not in IMPORTED:
            left.append(f"{file.uri}: {report.status}: {'; '.join(report.errors[:1])}")
    if left:
        result.status, result.reason = "failed", " | ".join(left)
    else:
        result.status = "replayed"
    return result


def _import_again(file: S3File, settings: Settings, config: ProjectConfig) -> ImportReport:
    dataset = imports.dataset_of(file.key)
    assert dataset is not None  # `read_record` took only such keys
    s3 = aws.client("s3")
    try:
        current = s3.head_object(Bucket=file.bucket, Key=file.key)
    except ClientError as exc:
        if _missing(exc):
            raise _Gone("no longer exists (deleted since Lambda gave up)") from None
        raise
    newer = _imported_since(file, current.get("VersionId"), dataset)
    if newer:
        return newer
    try:
        result = imports.import_object(
            file.bucket, file.key, settings, config, version=file.version, again=True
        )
    except ClientError as exc:
        if _missing(exc):
            raise _Gone(f"version {file.version} no longer exists") from None
        raise
    return imports.as_report(dataset, file.bucket, result)


def _imported_since(file: S3File, current: str | None, dataset: Dataset) -> ImportReport | None:
    """A `duplicate` report when a newer version of the key than the event's was imported."""
    if not file.version or not current or current == file.version:
        return None
    report_key = f"reports/{file.key}.json"
    previous = imports.read_report(file.bucket, report_key)
    if not previous or previous.get("version") != current:
        return None
    if previous.get("status") not in IMPORTED:
        return None
    return ImportReport(
        dataset,
        "duplicate",
        0,
        0,
        [f"not imported again: the file's newer version {current} was imported since"],
        source=file.uri,
        version=file.version,
        job=previous.get("job_arn"),
        report=f"s3://{file.bucket}/{report_key}",
    )


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in ("404", "NoSuchKey", "NoSuchVersion", "NotFound") or status == 404
