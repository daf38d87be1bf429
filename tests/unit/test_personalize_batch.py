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

from chalicelib import aws
from chalicelib.config import load_config
from chalicelib.filters import FilterError, FilterRequest
from chalicelib.providers.personalize import batch
from chalicelib.seam import runtime
from chalicelib.settings import Settings
from chalicelib.vocabulary import ProviderError
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


BY_CATEGORY = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) AND Items.PRICE < $MAX"


def _config() -> Any:
    settings = Settings()
    return load_config(settings.config).model_copy(update={"filters": {"cat": BY_CATEGORY}})


def _expect_job(stub: Stubber, filter_name: str | None = "cat") -> None:
    stub.add_response(
        "describe_campaign",
        {"campaign": {"campaignArn": CAMPAIGN_ARN, "solutionVersionArn": VERSION}},
        {"campaignArn": CAMPAIGN_ARN},
    )
    expected = {
        "jobName": ANY,
        "solutionVersionArn": VERSION,
        "numResults": 7,
        "jobInput": {"s3DataSource": {"path": ANY}},
        "jobOutput": {"s3DataDestination": {"path": ANY}},
        "roleArn": ROLE,
    }
    if filter_name:
        expected["filterArn"] = f"{GROUP_ARN.replace('dataset-group', 'filter')}-{filter_name}"
    stub.add_response("create_batch_inference_job", {"batchInferenceJobArn": JOB_ARN}, expected)
    for status in ("CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"):
        stub.add_response(
            "describe_batch_inference_job",
            {"batchInferenceJob": {"status": status}},
            {"batchInferenceJobArn": JOB_ARN},
        )


def _personalize(s3: Any, uploaded: list[dict[str, Any]], reverse: bool = False) -> Any:
    """While the command waits, play Personalize: read the input, write `<name>.out` (its last
    line unterminated, as Personalize may leave it)."""

    def works(_: float) -> None:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        (key,) = [k for k in keys if "/input/" in k]
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        uploaded[:] = [json.loads(line) for line in body.splitlines()]
        out = [
            {"input": line, "output": {"recommendedItems": ["i1"], "scores": [0.5]}, "error": None}
            for line in uploaded
        ]
        out[1] = {"input": uploaded[1], "output": None, "error": "Invalid filter values"}
        name = key.replace("/input/", "/output/") + ".out"
        rows = out[::-1] if reverse else out
        s3.put_object(Bucket=BUCKET, Key=name, Body="\n".join(map(json.dumps, rows)).encode())

    return works


SOURCE = (
    '{"userId": "u1"}\nnot json\n{"userId": "u2", "filterValues": {"CATEGORY": "\\"c\\""}}\n'
    '[1, 2]\n{"userId": "u3"}\n'
)


def test_a_job_runs_on_the_campaigns_version_and_its_output_is_downloaded(aws_batch, tmp_path):
    s3, stub = aws_batch
    src = tmp_path / "users.jsonl"
    src.write_text(SOURCE)
    _expect_job(stub)
    uploaded: list[dict[str, Any]] = []
    report = batch.run_batch(
        Settings(), _config(), src, tmp_path / "recs.jsonl", 7,
        flt=FilterRequest("cat", {"CATEGORY": ["a", "b"], "MAX": ["20"]}),
        poll_seconds=0, sleep=_personalize(s3, uploaded),
    )  # fmt: skip
    # The command's values went into every line as Personalize reads them (strings quoted,
    # the number bare); a line's own value won; the lines that are not objects stayed home.
    assert uploaded == [
        {"userId": "u1", "filterValues": {"CATEGORY": '"a","b"', "MAX": "20"}},
        {"userId": "u2", "filterValues": {"CATEGORY": '"c"', "MAX": "20"}},
        {"userId": "u3", "filterValues": {"CATEGORY": '"a","b"', "MAX": "20"}},
    ]
    records = [json.loads(x) for x in (tmp_path / "recs.jsonl").read_text().splitlines()]
    # Output line N answers input line N.
    assert [r["input"] if isinstance(r["input"], str | list) else r["input"]["userId"]
            for r in records] == ["u1", "not json", "u2", [1, 2], "u3"]  # fmt: skip
    assert [bool(r["error"]) for r in records] == [False, True, True, True, False]
    assert records[1]["error"].startswith("bad JSON")
    assert records[3]["error"] == "a line must be a JSON object"
    assert (report.lines, report.written, len(report.errors)) == (5, 2, 3)


def test_output_in_another_order_keeps_every_line(aws_batch, tmp_path):
    s3, stub = aws_batch
    src = tmp_path / "users.jsonl"
    src.write_text(SOURCE)
    _expect_job(stub, filter_name=None)
    report = batch.run_batch(
        Settings(), _config(), src, tmp_path / "recs.jsonl", 7,
        poll_seconds=0, sleep=_personalize(s3, [], reverse=True),
    )  # fmt: skip
    records = [json.loads(x) for x in (tmp_path / "recs.jsonl").read_text().splitlines()]
    assert [r["input"] for r in records][-2:] == ["not json", [1, 2]]
    assert sorted(r["input"]["userId"] for r in records[:3]) == ["u1", "u2", "u3"]
    assert report.lines == 5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"MAX": ["cheap"]}, "must be a number"),
        ({"COLOUR": ["red"]}, "no placeholder \\$COLOUR"),
        ({"CATEGORY": ['say "hi"']}, "double quote"),
    ],
)
def test_bad_default_values_stop_the_command_before_anything_is_uploaded(
    aws_batch, tmp_path, values, message
):
    s3, _ = aws_batch
    src = tmp_path / "users.jsonl"
    src.write_text('{"userId": "u1"}\n')
    with pytest.raises(FilterError, match=message):
        batch.run_batch(
            Settings(), _config(), src, tmp_path / "o.jsonl", 7, solution=VERSION,
            flt=FilterRequest("cat", values), poll_seconds=0,
        )  # fmt: skip
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_a_job_that_never_ends_is_left_running_with_its_arn(aws_batch):
    _, stub = aws_batch
    for _ in range(2):
        stub.add_response(
            "describe_batch_inference_job", {"batchInferenceJob": {"status": "CREATE IN_PROGRESS"}}
        )
    clock = iter([0.0, 30.0, 100_000.0])
    with pytest.raises(ProviderError, match="still CREATE IN_PROGRESS") as info:
        batch.wait_for_job(
            stub.client, JOB_ARN, "j1", progress=None, poll_seconds=0, sleep=lambda _: None,
            max_wait=3600, clock=lambda: next(clock),
        )  # fmt: skip
    assert JOB_ARN in str(info.value)


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
