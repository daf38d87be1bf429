"""`import_s3` and the API function, each under its own policy (`python -m deploy sync`'s, for
the stack's resources), with moto's IAM authorization (tests.iam_support): what the function does
works, every action it is granted is one it (or Lambda, for it) calls, and without any one
statement its work fails."""

from __future__ import annotations

import ast
import gzip
import json
import time
from typing import Any

import boto3
import pytest

from chalicelib.config import load_config
from chalicelib.handlers import imports as s3_handler
from chalicelib.providers.personalize import imports
from tests import currents_support as cs
from tests import iam_support
from tests.iam_support import (
    BY_LAMBDA,
    LOGS,
    NOT_CALLED_IN_MOTO,
    REGION,
    Deployed,
    granted,
    without,
)
from tests.ingest_support import events
from tests.personalize_control import FakeJobs

# -- import_s3 --------------------------------------------------------------------------------


def _interactions(rows: int) -> bytes:
    lines = ["USER_ID,ITEM_ID,EVENT_TYPE,EVENT_VALUE,TIMESTAMP"]
    lines += [f"u{n % 97},i{n % 301},purchase,1,{1_700_000_000 + n}" for n in range(rows)]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _notification(bucket: str, key: str, version: str) -> dict[str, Any]:
    return {
        "Records": [
            {"s3": {"bucket": {"name": bucket}, "object": {"key": key, "versionId": version}}}
        ]
    }


def run_import(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[bool, iam_support.Caller]:
    """A gzipped interactions file (staged plain, first import FULL) and an items file (item
    table loaded), each looked up in reports/ first."""
    bucket = d.settings.import_bucket
    s3 = boto3.client("s3", region_name=REGION)
    dropped = []
    for key, body in (
        ("imports/interactions/history.csv.gz", _interactions(1_200)),
        ("imports/items/catalogue.csv", b"ITEM_ID,NAME,PRICE,CATEGORY\ni1,Teapot,20.5,kitchen\n"),
    ):
        version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        dropped.append(_notification(bucket, key, version))
    config = load_config(d.settings.config)
    results = []
    with iam_support.acting_as(policy, monkeypatch) as caller:
        jobs = FakeJobs()
        for event in dropped:
            try:
                results += s3_handler.handle_s3(event, d.settings, config)
            except Exception:
                results.append(None)
            jobs.complete()
    ok = [r.status if r else None for r in results] == ["started", "started"]
    ok = ok and results[0].data_location.startswith(f"s3://{bucket}/staged/")  # type: ignore[union-attr]
    ok = ok and results[1].items_loaded == 1  # type: ignore[union-attr]
    return ok and not caller.denied, caller


def test_import_s3_works_under_its_policy_and_uses_all_of_it(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = deployed.documents["import_s3"]
    ok, caller = run_import(deployed, policy, monkeypatch)
    assert ok, caller.denied
    assert granted(policy) - caller.actions() <= LOGS | BY_LAMBDA["import_s3"]


@pytest.mark.parametrize(
    "sid",
    [
        "ReadImports",
        "ListBucket",
        "Reports",
        "StagedCopies",
        "ImportJobs",
        "ListImportJobs",
        "PassTheImportRole",
        "ItemTableLoads",
    ],
)
def test_import_s3_fails_without_any_one_statement(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, sid: str
) -> None:
    ok, _ = run_import(deployed, without(deployed.documents["import_s3"], sid), monkeypatch)
    assert not ok


def given_up(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[bool, iam_support.Caller]:
    """A users file dropped while the dataset's first import runs fails every attempt; Lambda
    then sends its record of the event to the function's on-failure destination, with the
    function's role (what `replay-imports` reads)."""
    bucket = d.settings.import_bucket
    s3 = boto3.client("s3", region_name=REGION)
    dropped = []
    for name in ("first", "second"):
        key = f"imports/users/{name}.csv"
        version = s3.put_object(Bucket=bucket, Key=key, Body=b"USER_ID,COUNTRY\nu1,FR\n")[
            "VersionId"
        ]
        dropped.append(_notification(bucket, key, version))
    sqs = boto3.client("sqs", region_name=REGION)
    failures = sqs.get_queue_url(QueueName=d.settings.import_failures_queue)["QueueUrl"]
    config = load_config(d.settings.config)
    with iam_support.acting_as(policy, monkeypatch) as caller:
        FakeJobs()
        s3_handler.handle_s3(dropped[0], d.settings, config)
        try:
            s3_handler.handle_s3(dropped[1], d.settings, config)
            return False, caller
        except s3_handler.ImportFailedError as exc:
            try:
                cs.lambda_gives_up(failures, dropped[1], exc, time.time())
            except Exception:  # SendMessage refused
                return False, caller
    kept = sqs.receive_message(QueueUrl=failures).get("Messages", [])
    ok = [json.loads(m["Body"])["requestPayload"] for m in kept] == [dropped[1]]
    return ok and not caller.denied, caller


def test_an_event_import_s3_gave_up_on_lands_in_its_failures_queue_under_its_policy(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, caller = given_up(deployed, deployed.documents["import_s3"], monkeypatch)
    assert ok, caller.denied
    assert ("sqs:SendMessage", deployed.stack.arns["RECS_IMPORT_FAILURES_QUEUE"]) in caller.allowed
    policy = without(deployed.documents["import_s3"], "FailureDestination")
    assert given_up(deployed, policy, monkeypatch)[0] is False


def test_the_import_role_and_bucket_are_those_of_the_stage(deployed: Deployed) -> None:
    """The policy names only this stage's bucket, role and import jobs."""
    text = json.dumps(deployed.documents["import_s3"])
    assert deployed.settings.import_bucket in text and "braze-recs-prod" not in text
    assert f":dataset-import-job/{imports.job_prefix('braze-shop')}-*" in text


# -- api_handler ------------------------------------------------------------------------------


def run_api(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, project_dir: Any
) -> tuple[bool, iam_support.Caller]:
    """The routes on AWS: personalized and fallback recommendations (filter by ARN, item table
    reads), a ranking that falls back (the catalogue's size), events and items queued, health;
    and the stage's API keys read from SSM or Secrets Manager, not another stage's."""
    from chalice.test import Client

    from app import app
    from chalicelib import aws
    from chalicelib.providers.personalize import items_table
    from chalicelib.seam import runtime
    from tests.personalize_fakes import FakeRuntime, items_reply, throttled

    prefix = d.names.personalize
    table = d.settings.items_table
    items_table.put_items(table, [("i1", {"name": "Hose", "price": 3}), ("i2", {"name": "Pot"})])
    items_table.put_popular(table, ["i2", "i1"])
    ssm = boto3.client("ssm", region_name=REGION)
    for stage in ("dev", "prod"):
        ssm.put_parameter(Name=f"/braze-recs/{stage}/api-keys", Value="k", Type="SecureString")
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name="braze-recs/prod/api-keys", SecretString="other-stage")
    variables = {
        "RECS_PROVIDER": "personalize",
        "RECS_API_KEYS": "key",
        "RECS_DATASET_GROUP_ARN": f"{prefix}:dataset-group/braze-shop",
        "RECS_CAMPAIGN_ARN": f"{prefix}:campaign/braze-shop-recommendations",
        "RECS_RANKING_CAMPAIGN_ARN": f"{prefix}:campaign/braze-shop-rankings",
        "RECS_EVENTS_QUEUE": d.settings.events_queue,
        "RECS_ITEMS_TABLE": table,
        "RECS_SERVED_TABLE": d.settings.served_table,
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    key = {"x-api-key": "key"}
    answers = []
    with iam_support.acting_as(policy, monkeypatch) as caller:
        fake = FakeRuntime()
        fake.on("GetRecommendations", items_reply("i1", "i2"), throttled())
        fake.on("GetPersonalizedRanking", _provider_bug)
        describe = aws.client("personalize", fast=True)
        describe.meta.events.register(
            "before-call.personalize.DescribeCampaign", _describe_campaign
        )
        with Client(app, stage_name="dev", project_dir=str(project_dir)) as client:
            post = {**key, "content-type": "application/json"}
            answers = [
                client.http.get(
                    "/recommendations?user_id=u1&filter=exclude-purchased", headers=key
                ),
                client.http.get("/recommendations?user_id=u2", headers=key),
                client.http.post(
                    "/rankings",
                    headers=post,
                    body=json.dumps({"user_id": "u1", "item_ids": ["i1", "x"]}),
                ),
                client.http.post("/events", headers=post, body=json.dumps(_events_body())),
                client.http.post(
                    "/items",
                    headers=post,
                    body=json.dumps({"items": [{"item_id": "i3", "properties": {"name": "Rake"}}]}),
                ),
                client.http.get("/health"),
            ]
        keys_ok = _reads_keys(caller)
    runtime.reset()
    ok = [a.status_code for a in answers] == [200, 200, 200, 202, 202, 200]
    ok = ok and answers[0].headers.get("X-Recommendation-Source") == "personalized"
    ok = ok and answers[1].headers.get("X-Recommendation-Source") == "fallback"
    ok = ok and json.loads(answers[5].body).get("model_version") is not None
    # Each answer's served list is kept (a failed write never breaks the answer: look for it).
    served = boto3.client("dynamodb", region_name=REGION).scan(TableName=d.settings.served_table)
    kept = {item["recommendation_id"]["S"] for item in served["Items"]}
    ok = ok and {answers[n].headers.get("X-Recommendation-Id") for n in (0, 1, 2)} <= kept
    # The only refusals: the other stage's keys, which `_reads_keys` asks for on purpose.
    denied_here = [(a, r) for a, r in caller.denied if "/prod/" not in r]
    return ok and keys_ok and not denied_here, caller


def _events_body() -> dict[str, Any]:
    body = events("u1", "i1")
    body.pop("type")  # POST /events takes the batch; the queue's envelope adds the type
    return body


def _provider_bug(body: dict[str, Any]) -> Any:
    """A ranking the provider fails on unexpectedly: the fallback policy serves the given items
    the item table has (BatchGetItem), most popular first."""
    raise RuntimeError("not a Personalize error")


def _describe_campaign(params: dict[str, Any], **_: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    body = json.loads(params["body"])
    caller = iam_support.current()
    if caller is not None and not caller.authorize(
        "personalize:DescribeCampaign", body["campaignArn"]
    ):
        error = {"Error": {"Code": "AccessDeniedException", "Message": "denied"}}
        return AWSResponse("https://fake", 400, {}, None), error
    campaign = {
        "campaignArn": body["campaignArn"],
        "solutionVersionArn": f"{body['campaignArn']}/v1",
    }
    return AWSResponse("https://fake", 200, {}, None), {"campaign": campaign}


def _reads_keys(caller: iam_support.Caller) -> bool:
    """RECS_API_KEYS_PARAMETER of this stage, as SSM parameter or secret; not prod's."""
    session = boto3.session.Session()  # the function's keys (the default session keeps its own)
    ssm = session.client("ssm", region_name=REGION)
    secrets = session.client("secretsmanager", region_name=REGION)
    try:
        ssm.get_parameter(Name="/braze-recs/dev/api-keys", WithDecryption=True)
        secrets.get_secret_value(SecretId="braze-recs/dev/api-keys")
    except Exception:
        return False
    for read in (
        lambda: ssm.get_parameter(Name="/braze-recs/prod/api-keys", WithDecryption=True),
        lambda: secrets.get_secret_value(SecretId="braze-recs/prod/api-keys"),
    ):
        try:
            read()
        except Exception as exc:
            if "AccessDenied" not in str(exc):
                return False
        else:
            return False
    return True


def test_the_api_function_works_under_its_policy_and_uses_all_of_it(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    policy = deployed.documents["api_handler"]
    ok, caller = run_api(deployed, policy, monkeypatch, tmp_path)
    assert ok, caller.denied
    assert granted(policy) - caller.actions() <= LOGS | NOT_CALLED_IN_MOTO


@pytest.mark.parametrize(
    "sid",
    [
        "Recommendations",
        "HealthModelVersion",
        "ServedLists",
        "QueueEvents",
        "ItemCatalogue",
        "ApiKeysParameter",
        "ApiKeysSecret",
    ],
)
def test_the_api_function_fails_without_any_one_statement(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, sid: str
) -> None:
    policy = without(deployed.documents["api_handler"], sid)
    ok, _ = run_api(deployed, policy, monkeypatch, tmp_path)
    assert not ok


def test_personalize_can_read_every_file_an_import_job_points_at(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role import jobs run under (the stack's) reads the files as dropped and the plain
    copies under staged/ that gzipped or BOM files are imported from."""
    ok, _ = run_import(deployed, deployed.documents["import_s3"], monkeypatch)
    assert ok
    iam = boto3.client("iam", region_name=REGION)
    role = deployed.settings.import_role_arn.rsplit("/", 1)[-1]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    # moto's CloudFormation keeps the template's policy as Python's repr, not JSON
    personalize = iam_support.Caller(ast.literal_eval(document))
    bucket = f"arn:aws:s3:::{deployed.settings.import_bucket}"
    s3 = boto3.client("s3", region_name=REGION)
    locations = []
    for listed in s3.list_objects_v2(Bucket=deployed.settings.import_bucket, Prefix="reports/")[
        "Contents"
    ]:
        report = json.loads(
            s3.get_object(Bucket=deployed.settings.import_bucket, Key=listed["Key"])["Body"].read()
        )
        locations.append(report["data_location"].removeprefix("s3://"))
    assert any("/staged/" in where for where in locations)
    assert personalize.allows("s3:ListBucket", bucket)
    for where in locations:
        assert personalize.allows("s3:GetObject", f"arn:aws:s3:::{where}"), where
