"""`python -m chalicelib replay-imports`: a CSV file `import_s3` could not import lands, after
Lambda's retries, in its failures queue as Lambda's invocation record (moto S3 and SQS, the
import jobs answered by `tests.personalize_control.FakeJobs`); the command imports it again as
the function does, once, and removes the message only then; a file gone or still failing stays
with the reason; a dry run changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from chalicelib import aws
from chalicelib.cli import main
from chalicelib.handlers import imports as s3_handler
from chalicelib.invocations import S3File, read_record
from chalicelib.seam import runtime
from tests import currents_support as cs
from tests.personalize_control import FakeJobs
from tests.personalize_fakes import ACCOUNT, REGION

BUCKET = "recs-imports"
FAILURES = "braze-recs-dev-import-failures"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/braze-recs-dev-personalize"
SETTINGS = {
    "RECS_PROVIDER": "personalize",
    "RECS_IMPORT_ROLE_ARN": ROLE,
    "RECS_IMPORT_BUCKET": BUCKET,
    "RECS_IMPORT_FAILURES_QUEUE": FAILURES,
}
USERS = "USER_ID,COUNTRY\nu1,France\nu2,Spain\n"


@pytest.fixture
def stage(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FakeJobs, str]]:
    """A `personalize` stage in moto: the versioned import bucket, the failures queue, and
    Personalize's import jobs (CREATE PENDING until `complete()`)."""
    for key, value in SETTINGS.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        aws.reset()
        runtime.reset()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=FAILURES)["QueueUrl"]
        jobs = FakeJobs()
        yield s3, jobs, url
        runtime.reset()
    assert jobs.violations == [], jobs.violations


def _drop(s3: Any, key: str, body: str) -> dict[str, Any]:
    """Put the file; the notification S3 sends `import_s3` for it (key URL-encoded)."""
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())["VersionId"]
    record = {"key": quote_plus(key, safe="/"), "versionId": version}
    return {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": record}}]}


def _lambda_gives_up(url: str, event: dict[str, Any]) -> s3_handler.ImportFailedError:
    """The first attempt and Lambda's two retries fail alike; Lambda then sends its record of
    the event to the function's on-failure destination."""
    for _ in range(3):
        with pytest.raises(s3_handler.ImportFailedError) as failed:
            s3_handler.handle_s3(event)
    cs.lambda_gives_up(url, event, failed.value, time.time())
    return failed.value


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[Any], str]:
    """The command's exit code, its JSON and what it said on stderr."""
    capsys.readouterr()  # not what `import_s3` printed before (its metric lines)
    code = main(["replay-imports", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _in_queue(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _report(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read())


def test_a_file_lambda_gave_up_on_is_imported_once_and_leaves_the_queue(
    stage: tuple[Any, FakeJobs, str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs, url = stage
    assert [r.status for r in s3_handler.handle_s3(_drop(s3, "imports/users/a.csv", USERS))] == [
        "started"
    ]
    # A second file while the dataset's first import runs: Personalize cannot take it yet.
    key = "imports/users/b.csv"
    event = _drop(s3, key, USERS.replace("u2", "u3"))
    _lambda_gives_up(url, event)
    assert _in_queue(url) == 1 and len(jobs.jobs) == 1
    assert _report(s3, key)["status"] == "error"

    # The cause is not fixed yet: the file stays, with why, and the alarm keeps counting it.
    code, [kept], said = _replay(capsys)
    assert code == 1 and kept["status"] == "failed"
    assert kept["files"] == [f"s3://{BUCKET}/{key}"]
    assert kept["lambda_error"] == f"ImportFailedError: 1 import(s) failed: {key}"
    assert "still running" in kept["reason"] and kept["reports"][0]["status"] == "error"
    assert said.startswith("replay-imports: 1 in the failures queue: 1 failed\n  failed: s3://")
    assert _in_queue(url) == 1 and len(jobs.jobs) == 1

    jobs.complete()  # the first import is over
    code, [replayed], said = _replay(capsys)
    assert code == 0 and replayed["status"] == "replayed"
    assert replayed["reason"] == replayed["lambda_error"]  # why Lambda gave up, kept
    [report] = replayed["reports"]
    assert (report["status"], report["mode"], report["rows"], report["imported"]) == (
        "started",
        "INCREMENTAL",
        2,
        2,
    )
    assert report["report"] == f"s3://{BUCKET}/reports/{key}.json"
    assert said == "replay-imports: 1 in the failures queue: 1 replayed\n"
    assert len(jobs.jobs) == 2 and _report(s3, key)["status"] == "started"
    assert _in_queue(url) == 0
    assert _replay(capsys) == (0, [], "replay-imports: the failures queue is empty\n")
    # S3 repeating the notification later starts nothing new.
    assert [r.status for r in s3_handler.handle_s3(event)] == ["duplicate"]
    assert len(jobs.jobs) == 2


def test_a_file_still_failing_validation_or_gone_stays_with_the_reason(
    stage: tuple[Any, FakeJobs, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bucket without versioning announces no version: what the key holds is imported, here
    a file replaced by a broken one since Lambda gave up, then fixed."""
    s3, jobs, url = stage
    jobs.refuse = "LimitExceededException"
    broken_key, gone_key = "imports/users/broken.csv", "imports/users/gone.csv"
    unversioned = _drop(s3, broken_key, USERS)
    unversioned["Records"][0]["s3"]["object"].pop("versionId")
    _lambda_gives_up(url, unversioned)
    _lambda_gives_up(url, _drop(s3, gone_key, USERS))
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=url, MessageBody="not json")
    jobs.refuse = None
    s3.put_object(Bucket=BUCKET, Key=broken_key, Body=b"USER_ID,COUNTRY\nu1,France\n,Spain\n")
    s3.delete_object(Bucket=BUCKET, Key=gone_key)

    code, found, said = _replay(capsys)
    by_file = {(r["files"] or ["?"])[0].rsplit("/", 1)[-1]: r for r in found}
    assert code == 1 and {r["status"] for r in found} == {"failed", "unreadable"}
    rejected = by_file["broken.csv"]
    assert rejected["reason"] == (f"s3://{BUCKET}/{broken_key}: rejected: 1 row(s) are invalid")
    assert rejected["reports"][0]["errors"] == [
        "1 row(s) are invalid",
        "row 2, USER_ID: USER_ID is empty",
    ]
    assert _report(s3, broken_key)["status"] == "rejected"
    gone = by_file["gone.csv"]
    assert gone["reason"] == (
        f"s3://{BUCKET}/{gone_key}: no longer exists (deleted since Lambda gave up)"
    )
    assert gone["lambda_error"] == f"ImportFailedError: 1 import(s) failed: {gone_key}"
    assert by_file["?"]["reason"].startswith("not a Lambda invocation record of an S3 event")
    assert said.count("\n  failed: ") == 2 and "\n  unreadable: " in said
    assert _in_queue(url) == 3 and not jobs.jobs

    # Validated again on the next run (not taken for handled), and imported once fixed.
    assert _replay(capsys)[0] == 1 and _in_queue(url) == 3
    s3.put_object(Bucket=BUCKET, Key=broken_key, Body=USERS.encode())
    code, found, _ = _replay(capsys)
    assert [r["status"] for r in found if r["files"] == [f"s3://{BUCKET}/{broken_key}"]] == [
        "replayed"
    ]
    assert code == 1 and _in_queue(url) == 2 and len(jobs.jobs) == 1


def test_a_dry_run_lists_the_files_and_why_lambda_gave_up_and_changes_nothing(
    stage: tuple[Any, FakeJobs, str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, jobs, url = stage
    jobs.refuse = "LimitExceededException"
    key = "imports/users/Kunden März+ü.csv"
    _lambda_gives_up(url, _drop(s3, key, USERS))
    jobs.refuse = None
    before = _report(s3, key)
    code, [listed], said = _replay(capsys, "--dry-run")
    assert code == 0 and listed["status"] == "due" and listed["reports"] == []
    assert listed["files"] == [f"s3://{BUCKET}/{key}"]
    assert listed["lambda_error"].startswith("ImportFailedError: 1 import(s) failed")
    assert f"\n  due: s3://{BUCKET}/{key}: ImportFailedError" in said
    assert not jobs.jobs and _report(s3, key) == before and _in_queue(url) == 1
    code, [replayed], _ = _replay(capsys)
    assert code == 0 and replayed["reports"][0]["status"] == "started"


def test_a_version_superseded_by_one_imported_since_is_not_imported_again(
    stage: tuple[Any, FakeJobs, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The remedy before this command: the file copied onto itself, a new version that
    `import_s3` imported. Importing the old version again would put its rows back on top."""
    s3, jobs, url = stage
    key = "imports/users/u.csv"
    jobs.refuse = "LimitExceededException"
    _lambda_gives_up(url, _drop(s3, key, USERS))
    jobs.refuse = None
    copy = s3.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        MetadataDirective="REPLACE",
    )
    record = {"key": key, "versionId": copy["VersionId"]}
    s3_handler.handle_s3({"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": record}}]})
    [job] = jobs.jobs
    code, [replayed], _ = _replay(capsys)
    assert code == 0 and replayed["status"] == "replayed"
    [report] = replayed["reports"]
    assert report["status"] == "duplicate" and report["job"].endswith(job)
    assert report["errors"] == [
        f"not imported again: the file's newer version {copy['VersionId']} was imported since"
    ]
    assert len(jobs.jobs) == 1 and _in_queue(url) == 0


def test_the_local_provider_and_an_unsynced_stage_say_what_is_missing(
    stage: tuple[Any, FakeJobs, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    unsynced = {"RECS_PROVIDER": "personalize", "RECS_IMPORT_FAILURES_QUEUE": ""}
    stages = {"dev": {"environment_variables": unsynced}}
    (project / ".chalice" / "config.json").write_text(json.dumps({"stages": stages}))
    monkeypatch.setattr("chalicelib.cli.replay.PROJECT_ROOT", project)
    for key in SETTINGS:
        monkeypatch.delenv(key)
    runtime.reset()
    assert main(["replay-imports"]) == 2
    assert "replay-imports: the local provider keeps no failures queue" in capsys.readouterr().err
    assert main(["replay-imports", "--stage", "dev"]) == 2
    assert "RECS_IMPORT_FAILURES_QUEUE is not set" in capsys.readouterr().err


def test_the_record_names_each_import_file_of_the_event_with_its_version() -> None:
    event = {
        "Records": [
            {"s3": {"bucket": {"name": BUCKET}, "object": {"key": k, "versionId": v}}}
            for k, v in (("imports/items/a+b%C3%A9.csv.gz", "v1"), ("imports/notes.txt", "v2"))
        ]
    }
    body = json.dumps(cs.invocation_record(event, RuntimeError("boom"), 1_700_000_000.5))
    given_up = read_record(body, lambda key: key.endswith((".csv", ".csv.gz")), "CSV file")
    assert given_up.files == (S3File(BUCKET, "imports/items/a bé.csv.gz", "v1"),)
    assert (given_up.failed_at, given_up.reason) == (1_700_000_000.5, "RuntimeError: boom")
    with pytest.raises(ValueError, match="the S3 event names no CSV file"):
        read_record(body, lambda key: False, "CSV file")


def test_the_operator_drops_a_file_that_will_never_import(
    stage: tuple[Any, FakeJobs, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--drop MESSAGE_ID` takes a message out of the queue without importing it (the alarm
    then stops counting it), listed as a dry run lists it; an id not in the queue is said."""
    s3, jobs, url = stage
    jobs.refuse = "LimitExceededException"
    gone_key, kept_key = "imports/users/gone.csv", "imports/users/kept.csv"
    _lambda_gives_up(url, _drop(s3, gone_key, USERS))
    _lambda_gives_up(url, _drop(s3, kept_key, USERS))
    jobs.refuse = None
    s3.delete_object(Bucket=BUCKET, Key=gone_key)
    _, found, _ = _replay(capsys, "--dry-run")
    gone_id = next(r["message_id"] for r in found if r["files"][0].endswith("gone.csv"))

    with pytest.raises(SystemExit) as refused:  # a dry run changes nothing: not both
        main(["replay-imports", "--dry-run", "--drop", gone_id])
    assert refused.value.code == 2

    code, found, said = _replay(capsys, "--drop", gone_id, "--drop", "no-such-message")
    by_status = {r["status"]: r for r in found}
    assert set(by_status) == {"dropped", "replayed"}  # the other file imported as usual
    dropped = by_status["dropped"]
    assert dropped["message_id"] == gone_id and dropped["reports"] == []
    assert dropped["reason"].startswith("dropped by the operator (ImportFailedError: ")
    assert f"  dropped: s3://{BUCKET}/{gone_key}: dropped by the operator" in said
    assert "  not in the queue, nothing dropped: no-such-message" in said
    assert code == 1  # one id asked for was not there
    assert _in_queue(url) == 0 and len(jobs.jobs) == 1
