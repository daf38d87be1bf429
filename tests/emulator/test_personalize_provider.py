"""The project's own `personalize` provider end to end against the emulator, through the real
botocore clients the Lambda functions use: `setup`, a CSV dropped under `imports/` and imported
by `import_s3`, `train` with metrics, `versions`, `deploy`, `GET /recommendations` personalized
and decorated from the item table, events through `ingest_sqs` changing that user's next answer,
and `batch`. moto plays S3, SQS and DynamoDB."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.api import routes
from chalicelib.api.web import Request
from chalicelib.handlers import imports as import_handler
from chalicelib.handlers import ingest
from chalicelib.seam import runtime
from chalicelib.settings import Settings
from tests.emulator_support import BUCKET, REGION, ROLE, Emulated, shop_csv, wait

CONFIG = """
[dataset_group]
name = "shop"

[[solutions]]
name = "up"
recipe = "user-personalization"
perform_auto_training = false

[[solutions]]
name = "sims"
recipe = "similar-items"

[[solutions]]
name = "ranking"
recipe = "personalized-ranking"

[campaigns.recommendations]
solution = "up"

[campaigns.related-items]
solution = "sims"

[campaigns.rankings]
solution = "ranking"

[filters]
exclude-purchased = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
"""
KEY = "emulator-test-key"
TABLE = "shop-items"
QUEUE, DLQ = "shop-events", "shop-events-dlq"
POLL = {"poll_seconds": 0.02}


def items_csv() -> str:
    kinds = ["garden", "kitchen", "toys", "books"]
    rows = [f"i{n},Item {n},{n + 0.5},{kinds[n // 10]}" for n in range(40)]
    return "ITEM_ID,NAME,PRICE,CATEGORY\n" + "\n".join(rows) + "\n"


def s3_event(key: str) -> dict[str, Any]:
    """What S3 sends `import_s3` for an object created under the watched prefix."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
            }
        ]
    }


def get(path: str, **query: str) -> tuple[int, dict[str, str], Any]:
    request = Request("GET", {"x-api-key": KEY}, {k: [v] for k, v in query.items()})
    reply = routes.route(path, request)
    return reply.status, reply.headers, json.loads(reply.body)


@pytest.fixture
def aws_shop(
    start_emulator: Callable[..., Emulated], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Emulated:
    emulated = start_emulator()
    config = tmp_path / "recs.toml"
    config.write_text(CONFIG)
    for name, value in {
        "RECS_PROVIDER": "personalize",
        "RECS_CONFIG": str(config),
        "RECS_API_KEYS": KEY,
        "RECS_IMPORT_BUCKET": BUCKET,
        "RECS_IMPORT_ROLE_ARN": ROLE,
        "RECS_ITEMS_TABLE": TABLE,
        "RECS_EVENTS_QUEUE": QUEUE,
        "RECS_DEAD_LETTER_QUEUE": DLQ,
        "RECS_IMPORT_MODE": "full",
        "RECS_PERSONALIZE_POLL_SECONDS": "0.02",  # what train and batch poll with
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName=DLQ)
    sqs.create_queue(QueueName=QUEUE)
    runtime.reset()
    return emulated


def apply_settings(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    runtime.reset()


def drop(emulated: Emulated, dataset: str, body: str) -> None:
    """A file dropped under imports/<dataset>/, its notification handled as Lambda would."""
    key = f"imports/{dataset}/{dataset}.csv"
    emulated.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    (result,) = import_handler.handle_s3(s3_event(key))
    assert result.status == "started", result
    job = wait(
        lambda: emulated.control.describe_dataset_import_job(datasetImportJobArn=result.job_arn)[
            "datasetImportJob"
        ]
    )
    assert job["status"] == "ACTIVE", job.get("failureReason")


def ingest_through_sqs(envelope: dict[str, Any]) -> None:
    """The envelope sent to the events queue, received and handed to `ingest_sqs` as Lambda
    hands it a batch."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ingest.handle_sqs(
        {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "eventSource": "aws:sqs",
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
    )


def test_the_whole_aws_path_runs_on_the_emulator(
    aws_shop: Emulated, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rt = runtime.current()
    report = rt.workflow.setup(None, **POLL)
    assert {s.action for s in report.steps} >= {"created"}
    apply_settings(monkeypatch, report.settings)
    again = runtime.current().workflow.setup(None, **POLL)
    assert aws_shop.control.list_dataset_groups()["datasetGroups"][0]["name"] == "shop"
    assert "created" not in {s.action for s in again.steps}  # nothing is created twice

    drop(aws_shop, "interactions", shop_csv())
    drop(aws_shop, "items", items_csv())

    infos = runtime.current().workflow.train()  # as `python -m chalicelib train` runs it
    assert len(infos) == 3
    assert infos[0].metrics["normalized_discounted_cumulative_gain_at_10"] > 0.3
    apply_settings(monkeypatch, runtime.current().workflow.setup(None, **POLL).settings)
    assert Settings().campaign_arn.endswith(":campaign/shop-recommendations")

    metrics = runtime.current().workflow.metrics()
    assert metrics is not None and metrics.version_id == infos[0].version_id
    assert "precision_at_25" in metrics.metrics

    status, headers, body = get("/recommendations", user_id="u1", num_results="10")
    assert status == 200
    assert headers["X-Recommendation-Source"] == "personalized"
    assert body[0]["name"].startswith("Item ") and body[0]["price"] is not None
    assert sum(10 <= int(item["id"][1:]) < 20 for item in body) >= 7
    _, _, related = get("/related-items", item_id="i3", num_results="5")
    assert related and all(item["id"] != "i3" for item in related)

    # An event travels SQS → ingest_sqs → PutEvents and changes the user's next answer.
    _, _, before = get("/recommendations", user_id="newcomer", num_results="5")
    ingest_through_sqs(
        {
            "type": "events",
            "user_id": "newcomer",
            "session_id": "s1",
            "events": [
                {"event_type": "view", "item_id": f"i{30 + n}", "timestamp": time.time() + n}
                for n in range(5)
            ],
        }
    )
    _, headers, after = get("/recommendations", user_id="newcomer", num_results="5")
    assert headers["X-Recommendation-Source"] == "personalized"
    assert [i["id"] for i in after] != [i["id"] for i in before]
    assert all(30 <= int(i["id"][1:]) < 40 for i in after)

    # A retrained version deployed to the campaign by `deploy`.
    newer = runtime.current().workflow.train("up")[0]
    older = infos[0].version_id
    runtime.current().workflow.deploy("recommendations", older)
    campaign = wait(
        lambda: aws_shop.control.describe_campaign(campaignArn=Settings().campaign_arn)["campaign"]
    )
    assert campaign["solutionVersionArn"] == older != newer.version_id
    versions = runtime.current().workflow.versions("up")
    assert [v.version_id for v in versions] == [newer.version_id, older]

    # Batch inference: JSON lines up to S3, the job on the emulator, the output back down.
    source = tmp_path / "users.jsonl"
    source.write_text('{"userId": "u1"}\n{"userId": "u2"}\n')
    output = tmp_path / "recs.jsonl"
    done = runtime.current().workflow.batch(source, output, 5, solution="up")
    assert done.written == 2
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [len(line["output"]["recommendedItems"]) for line in lines] == [5, 5]


def test_lambdas_event_sources_are_played_as_lambda_would(
    aws_shop: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run-aws`'s players: a message on the events queue, a record on the stream and a file
    under imports/ each reach their handler and Personalize."""
    from chalicelib.cli.lambda_sources import Sources

    monkeypatch.setenv("RECS_EVENTS_STREAM", "shop-stream")
    boto3.client("kinesis", region_name=REGION).create_stream(
        StreamName="shop-stream", ShardCount=1
    )
    apply_settings(monkeypatch, runtime.current().workflow.setup(None, **POLL).settings)
    store = aws_shop.running.emulator.groups.of(Settings().dataset_group_arn).store
    sources = Sources(QUEUE, "shop-stream", BUCKET, REGION)
    sources.start()
    try:
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        event = {"event_type": "view", "item_id": "i1", "timestamp": 1_700_000_000}
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"type": "events", "user_id": "a", "events": [event]}),
        )
        boto3.client("kinesis", region_name=REGION).put_record(
            StreamName="shop-stream",
            PartitionKey="b",
            Data=json.dumps({"type": "events", "user_id": "b", "events": [event]}).encode(),
        )
        aws_shop.s3.put_object(
            Bucket=BUCKET, Key="imports/interactions/history.csv", Body=shop_csv().encode()
        )
        deadline = time.monotonic() + 60
        while store.counts()["interactions"] < 2002 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.user_events("a") and store.user_events("b")
        assert store.counts()["interactions"] == 2002  # the file's 2,000 and the two events
        assert sources.handled["sqs"] == 1 and sources.handled["kinesis"] == 1
        assert (
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
            == "0"
        )  # deleted once handled
    finally:
        sources.close()


def test_setup_reports_what_changed_and_updates_what_personalize_can(
    aws_shop: Emulated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed schema becomes a new schema that UpdateDataset switches to; a changed filter is
    reported and left alone (Personalize cannot update a filter)."""
    apply_settings(monkeypatch, runtime.current().workflow.setup(None, **POLL).settings)
    changed = CONFIG.replace('IN ("purchase")', 'IN ("purchase", "refund")')
    changed += '\n[schemas.items]\nITEM_ID = "string"\nCATEGORY = "string categorical"\n'
    (tmp_path / "changed.toml").write_text(changed)
    apply_settings(monkeypatch, {"RECS_CONFIG": str(tmp_path / "changed.toml")})
    report = runtime.current().workflow.setup(None, **POLL)
    got = {(s.kind, s.name): s.action for s in report.steps}
    assert got[("dataset", "shop-items")] == "updated"
    assert got[("dataset", "shop-users")] == "exists"
    assert got[("filter", "shop-exclude-purchased")] == "changed"
    items = aws_shop.control.describe_dataset(
        datasetArn=f"{Settings().dataset_group_arn.replace('dataset-group', 'dataset')}/ITEMS"
    )["dataset"]
    schema = aws_shop.control.describe_schema(schemaArn=items["schemaArn"])["schema"]
    assert [f["name"] for f in json.loads(schema["schema"])["fields"]] == ["ITEM_ID", "CATEGORY"]
    flt = aws_shop.control.list_filters(datasetGroupArn=Settings().dataset_group_arn)["Filters"]
    described = aws_shop.control.describe_filter(filterArn=flt[0]["filterArn"])["filter"]
    assert described["filterExpression"].endswith('IN ("purchase")')
