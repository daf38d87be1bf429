"""Batch inference on AWS: the input staged in S3 (moto), CreateBatchInferenceJob and
DescribeBatchInferenceJob through botocore's Stubber (checked against the service model), the
output downloaded, bad lines kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from chalicelib import aws, runtime
from chalicelib.config import load_config
from chalicelib.providers.base import FilterRequest, ProviderError
from chalicelib.providers.personalize import batch
from chalicelib.settings import Settings
from tests.personalize_fakes import CAMPAIGN_ARN, GROUP_ARN, REGION

BUCKET = "recs-imports"
ROLE = "arn:aws:iam::123456789012:role/personalize-s3"
VERSION = "arn:aws:personalize:us-east-1:123456789012:solution-version/up/abc123"
JOB_ARN = "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/j1"


@pytest.fixture
def aws_batch(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECS_IMPORT_BUCKET", BUCKET)
    monkeypatch.setenv("RECS_IMPORT_ROLE_ARN", ROLE)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        aws.override("s3", s3)
        personalize = boto3.client("personalize", region_name=REGION)
        aws.override("personalize", personalize)
        with Stubber(personalize) as stub:
            yield s3, stub
            stub.assert_no_pending_responses()
    runtime.reset()


def test_a_job_runs_on_the_campaigns_version_and_its_output_is_downloaded(aws_batch, tmp_path):
    s3, stub = aws_batch
    src = tmp_path / "users.jsonl"
    src.write_text(
        '{"userId": "u1"}\n{"userId": "u2", "filterValues": {"X": "\\"b\\""}}\nnot json\n'
    )
    stub.add_response(
        "describe_campaign",
        {"campaign": {"campaignArn": CAMPAIGN_ARN, "solutionVersionArn": VERSION}},
        {"campaignArn": CAMPAIGN_ARN},
    )
    stub.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": JOB_ARN},
        {
            "jobName": ANY,
            "solutionVersionArn": VERSION,
            "numResults": 7,
            "filterArn": f"{GROUP_ARN.replace('dataset-group', 'filter')}-exclude-purchased",
            "jobInput": {"s3DataSource": {"path": ANY}},
            "jobOutput": {"s3DataDestination": {"path": ANY}},
            "roleArn": ROLE,
        },
    )
    for status in ("CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"):
        stub.add_response(
            "describe_batch_inference_job",
            {"batchInferenceJob": {"status": status}},
            {"batchInferenceJobArn": JOB_ARN},
        )
    uploaded: list[dict[str, Any]] = []

    def personalize_works(_: float) -> None:
        """While the command waits, play Personalize: read the input, write `<name>.out`."""
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        (key,) = [k for k in keys if "/input/" in k]
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        uploaded[:] = [json.loads(line) for line in body.splitlines()]
        out = [
            {"input": uploaded[0], "output": {"recommendedItems": ["i1"], "scores": [0.5]}},
            {"input": uploaded[1], "error": "Invalid filter values"},
        ]
        name = key.replace("/input/", "/output/") + ".out"
        s3.put_object(Bucket=BUCKET, Key=name, Body="\n".join(map(json.dumps, out)).encode())

    settings = Settings()
    report = batch.run_batch(
        settings,
        load_config(settings.config),
        src,
        tmp_path / "recs.jsonl",
        7,
        flt=FilterRequest("exclude-purchased", {"X": ["a"]}),
        poll_seconds=0,
        sleep=personalize_works,
    )
    # The command's filter values went into the line without its own; the bad line stayed home.
    assert uploaded == [
        {"userId": "u1", "filterValues": {"X": '"a"'}},
        {"userId": "u2", "filterValues": {"X": '"b"'}},
    ]
    records = [json.loads(x) for x in (tmp_path / "recs.jsonl").read_text().splitlines()]
    assert [r.get("error") for r in records] == [None, "Invalid filter values", ANY]
    assert records[2]["input"] == "not json"
    assert records[2]["error"].startswith("bad JSON")
    assert (report.lines, report.written, len(report.errors)) == (3, 1, 2)


def test_a_failed_job_says_why(aws_batch, tmp_path):
    _, stub = aws_batch
    src = tmp_path / "users.jsonl"
    src.write_text('{"userId": "u1"}\n')
    stub.add_response("create_batch_inference_job", {"batchInferenceJobArn": JOB_ARN})
    stub.add_response(
        "describe_batch_inference_job",
        {"batchInferenceJob": {"status": "CREATE FAILED", "failureReason": "Access denied"}},
    )
    settings = Settings()
    with pytest.raises(ProviderError, match="Access denied"):
        batch.run_batch(
            settings, load_config(settings.config), src, tmp_path / "o.jsonl", 5,
            solution=VERSION, poll_seconds=0, sleep=lambda _: None,
        )  # fmt: skip


def test_without_a_bucket_and_role_the_command_says_what_to_set(aws_env, tmp_path):
    settings = Settings()
    with pytest.raises(ProviderError, match="RECS_BATCH_BUCKET"):
        batch.run_batch(settings, load_config(settings.config), Path("x"), tmp_path / "o", 5)
