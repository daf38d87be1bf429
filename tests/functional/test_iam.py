"""Each Lambda function under its own policy (`python -m deploy sync`'s, for the stack's
resources), with moto's IAM authorization (tests.iam_support): what the function does works,
every action it is granted is one it (or Lambda, for it) calls, and without any one statement
its work fails.
"""

from __future__ import annotations

import ast
import base64
import gzip
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import imports, ingest
from chalicelib.config import load_config
from chalicelib.settings import Settings
from deploy import offline
from deploy.policies import StageResources, policies
from deploy.stage import Stack, resources
from tests import iam_support
from tests.ingest_support import FakeEvents, events
from tests.personalize_control import FakeJobs

REGION = "us-east-1"
# Called by Lambda for the function (its logs, its event source's polling, its on-failure
# destination), never by the function's code.
BY_LAMBDA = {
    "api_handler": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
    "ingest_sqs": {"sqs:ReceiveMessage", "sqs:GetQueueAttributes"},
    "ingest_kinesis": {
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:ListStreams",
    },
    "import_s3": {"sqs:SendMessage"},  # the on-failure destination
}
LOGS = BY_LAMBDA["api_handler"]
# kms:Decrypt is SSM's own call to KMS for a SecureString, which moto does not make.
NOT_CALLED_IN_MOTO = {"kms:Decrypt"}


@pytest.fixture(autouse=True)
def _every_response_is_safe() -> None:
    """Replaces the functional tests' check that no response is a 5xx: a function missing a
    permission may answer 500 (the envelope without detail is still checked by the routes'
    own tests); here the statuses are asserted by each scenario."""


@dataclass
class Deployed:
    stack: Stack
    names: StageResources
    documents: dict[str, dict[str, Any]]
    settings: Settings


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """The `dev` stage's stack created in moto, and its functions' policies from `sync`."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with warnings.catch_warnings(), mock_aws():
        warnings.simplefilter("ignore")  # moto's CloudFormation skips the alarms
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName="braze-recs-dev",
            TemplateBody=offline.TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": "dev"}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        [described] = cfn.describe_stacks(StackName="braze-recs-dev")["Stacks"]
        stack = Stack.from_outputs(described["Outputs"])
        # What the template sets and moto's CloudFormation leaves out: the bucket's versioning
        # and the API keys secret.
        boto3.client("s3", region_name=REGION).put_bucket_versioning(
            Bucket=stack.settings["RECS_IMPORT_BUCKET"],
            VersioningConfiguration={"Status": "Enabled"},
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=stack.settings["RECS_API_KEYS_PARAMETER"], SecretString="generated-key"
        )
        personalize = offline.example_personalize()
        names = resources("dev", stack, personalize)
        settings = Settings(
            provider="personalize",
            dataset_group_arn=personalize["RECS_DATASET_GROUP_ARN"],
            tracking_id=personalize["RECS_TRACKING_ID"],
            events_queue=stack.settings["RECS_EVENTS_QUEUE"],
            dead_letter_queue=stack.settings["RECS_DEAD_LETTER_QUEUE"],
            import_bucket=stack.settings["RECS_IMPORT_BUCKET"],
            import_role_arn=stack.settings["RECS_IMPORT_ROLE_ARN"],
            items_table=stack.settings["RECS_ITEMS_TABLE"],
        )
        yield Deployed(stack, names, policies(names), settings)


def without(document: dict[str, Any], sid: str) -> dict[str, Any]:
    kept = [s for s in document["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(document["Statement"]) - 1, sid
    return {**document, "Statement": kept}


def granted(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


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
                results += imports.handle_s3(event, d.settings, config)
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


def test_the_import_role_and_bucket_are_those_of_the_stage(deployed: Deployed) -> None:
    """The policy names only this stage's bucket, role and import jobs."""
    text = json.dumps(deployed.documents["import_s3"])
    assert deployed.settings.import_bucket in text and "braze-recs-prod" not in text
    assert f":dataset-import-job/{imports.job_prefix('braze-shop')}-*" in text


# -- ingest_sqs and ingest_kinesis ------------------------------------------------------------


def _fake_events(monkeypatch: pytest.MonkeyPatch, d: Deployed) -> FakeEvents:
    from chalicelib import aws

    fake = FakeEvents()
    fake.trackers[d.settings.tracking_id] = d.names.tracker_arn
    client = aws.client("personalize-events")
    client.meta.events.register_first("before-send.personalize-events.*", fake.send)
    fake.refuse = lambda op, body: "ThrottlingException" if body.get("userId") == "slow" else None
    return fake


def run_sqs(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[bool, iam_support.Caller]:
    """A batch with accepted events, a partly accepted message (requeued), a throttled one
    (retried: the finished ones deleted first), a bad one (dead-lettered), users, and items
    (PutItems and the item table)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=d.settings.events_queue)["QueueUrl"]
    bodies = [
        events("a", "1"),
        [events("b", "2"), events("slow", "3")],
        events("slow", "4"),
        "{not json",
        {"type": "items", "items": [{"item_id": "i9", "properties": {"name": "Kite"}}]},
        {"type": "users", "users": [{"user_id": "a", "properties": {"country": "FR"}}]},
    ]
    for body in bodies:
        sqs.send_message(
            QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)[
        "Messages"
    ]
    arn = d.stack.arns["RECS_EVENTS_QUEUE"]
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSourceARN": arn,
            }
            for m in got
        ]
    }
    with iam_support.acting_as(policy, monkeypatch) as caller:
        fake = _fake_events(monkeypatch, d)
        try:
            ingest.handle_sqs(event, d.settings)
            raised = False
        except ingest.RetryLater:
            raised = True
        except Exception:  # a refused call the handler cannot take in its stride
            return False, caller
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    dlq = sqs.get_queue_url(QueueName=d.settings.dead_letter_queue)["QueueUrl"]
    letters = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    table = boto3.client("dynamodb", region_name=REGION)
    row = table.get_item(TableName=d.settings.items_table, Key={"item_id": {"S": "i9"}}).get("Item")
    ok = raised and len(fake.accepted) == 2 and len(fake.items) == len(fake.users) == 1
    ok = ok and len(letters) == 1
    # The batch's own throttled message comes back (visibility 60 s, not here) and the requeued
    # envelope is a new message: only that one is visible.
    ok = ok and len(left.get("Messages", [])) == 1 and row is not None
    return ok and not caller.denied, caller


def test_ingest_sqs_works_under_its_policy_and_uses_all_of_it(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = deployed.documents["ingest_sqs"]
    ok, caller = run_sqs(deployed, policy, monkeypatch)
    assert ok, caller.denied
    assert granted(policy) - caller.actions() <= LOGS | BY_LAMBDA["ingest_sqs"]


@pytest.mark.parametrize(
    "sid", ["EventsQueue", "DeadLetters", "PutEvents", "PutUsersAndItems", "ItemTableWrites"]
)
def test_ingest_sqs_fails_without_any_one_statement(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, sid: str
) -> None:
    ok, _ = run_sqs(deployed, without(deployed.documents["ingest_sqs"], sid), monkeypatch)
    assert not ok


def run_kinesis(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[bool, iam_support.Caller]:
    """Accepted events, a bad record (dead-lettered), a throttled one handed to the events
    queue, then with no queue to take it, written back to the stream; users; items (PutItems
    and the item table)."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    arn = d.stack.arns["RECS_EVENTS_STREAM"]
    bodies = [
        json.dumps(events("a", "1")).encode(),
        b"\xff not json",
        json.dumps(events("slow", "2")).encode(),
        json.dumps(
            {"type": "items", "items": [{"item_id": "i8", "properties": {"name": "Mug"}}]}
        ).encode(),
        json.dumps(
            {"type": "users", "users": [{"user_id": "a", "properties": {"country": "FR"}}]}
        ).encode(),
    ]
    records = []
    for n, body in enumerate(bodies):
        put = kinesis.put_record(StreamARN=arn, Data=body, PartitionKey=f"p{n}")
        records.append(
            {
                "kinesis": {
                    "data": base64.b64encode(body).decode(),
                    "sequenceNumber": put["SequenceNumber"],
                    "partitionKey": f"p{n}",
                },
                "eventSourceARN": arn,
            }
        )
    event = {"Records": records}
    no_queue = d.settings.model_copy(update={"events_queue": ""})
    with iam_support.acting_as(policy, monkeypatch) as caller:
        fake = _fake_events(monkeypatch, d)
        try:
            ingest.handle_kinesis(event, d.settings)
            ingest.handle_kinesis({"Records": records[2:3]}, no_queue)
            raised = False
        except ingest.RetryLater:
            raised = True
        except Exception:
            return False, caller
    sqs = boto3.client("sqs", region_name=REGION)
    handed = sqs.receive_message(
        QueueUrl=sqs.get_queue_url(QueueName=d.settings.events_queue)["QueueUrl"]
    )
    name = d.stack.settings["RECS_EVENTS_STREAM"]
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=name, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber=records[-1]["kinesis"]["sequenceNumber"],
    )["ShardIterator"]  # fmt: skip
    back = kinesis.get_records(ShardIterator=iterator)["Records"]
    ok = not raised and len(fake.accepted) == 1 and len(fake.items) == len(fake.users) == 1
    ok = ok and len(handed.get("Messages", [])) == 1 and len(back) == 1
    return ok and not caller.denied, caller


def test_ingest_kinesis_works_under_its_policy_and_uses_all_of_it(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = deployed.documents["ingest_kinesis"]
    ok, caller = run_kinesis(deployed, policy, monkeypatch)
    assert ok, caller.denied
    assert granted(policy) - caller.actions() <= LOGS | BY_LAMBDA["ingest_kinesis"]


@pytest.mark.parametrize(
    "sid", ["EventsStream", "HandOn", "PutEvents", "PutUsersAndItems", "ItemTableWrites"]
)
def test_ingest_kinesis_fails_without_any_one_statement(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, sid: str
) -> None:
    ok, _ = run_kinesis(deployed, without(deployed.documents["ingest_kinesis"], sid), monkeypatch)
    assert not ok


# -- api_handler ------------------------------------------------------------------------------


def run_api(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, project_dir: Any
) -> tuple[bool, iam_support.Caller]:
    """The routes on AWS: personalized and fallback recommendations (filter by ARN, item table
    reads), a ranking that falls back (the catalogue's size), events and items queued, health;
    and the stage's API keys read from SSM or Secrets Manager, not another stage's."""
    from chalice.test import Client

    from app import app
    from chalicelib import aws, runtime
    from chalicelib.providers.personalize import items_table
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
    # The only refusals: the other stage's keys, which `_reads_keys` asks for on purpose.
    denied_here = [(a, r) for a, r in caller.denied if "/prod/" not in r]
    return ok and keys_ok and not denied_here, caller


def _events_body() -> dict[str, Any]:
    body = events("u1", "i1")
    body.pop("type")  # POST /events takes the batch; the queue's envelope adds the type
    return body


def _provider_bug(body: dict[str, Any]) -> Any:
    """A ranking the provider fails on unexpectedly: the route falls back to the given items
    the catalogue has, asking the catalogue's size."""
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
