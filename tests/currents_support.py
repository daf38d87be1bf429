"""Braze Currents Avro files for the tests, written by fastavro in Braze's field layout: every
record has `id`, `user_id`, `external_user_id` (a nullable union) and `time` (epoch seconds),
plus each event type's own fields and some the code never reads (the real schemas have more)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fastavro

from chalicelib.cli import run_aws

PURCHASE = "users.behaviors.Purchase"
CUSTOM = "users.behaviors.CustomEvent"
EMAIL_CLICK = "users.messages.email.Click"
CARD_CLICK = "users.messages.contentcard.Click"
CARD_IMPRESSION = "users.messages.contentcard.Impression"
SESSION_START = "users.behaviors.app.SessionStart"  # a type nothing maps
# The stage of the AWS tests (`aws_stage`): import bucket, served table, event tracker.
BUCKET, TABLE, TRACKING = "recs-imports", "recs-served", "tracking-1"

_NULLABLE = ["null", "string"]
_COMMON: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "user_id", "type": "string"},
    {"name": "external_user_id", "type": _NULLABLE, "default": None},
    {"name": "app_id", "type": _NULLABLE, "default": None},  # unused by the code
    {"name": "time", "type": "int"},
    {"name": "timezone", "type": _NULLABLE, "default": None},  # unused by the code
]
_CAMPAIGN: list[dict[str, Any]] = [
    {"name": "campaign_id", "type": _NULLABLE, "default": None},
    {"name": "campaign_name", "type": _NULLABLE, "default": None},
    {"name": "canvas_id", "type": _NULLABLE, "default": None},
    {"name": "canvas_step_id", "type": _NULLABLE, "default": None},
    {"name": "send_id", "type": _NULLABLE, "default": None},
]
FIELDS: dict[str, list[dict[str, Any]]] = {
    PURCHASE: [
        {"name": "product_id", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "currency", "type": "string"},
        {"name": "quantity", "type": ["null", "int"], "default": None},
        {"name": "properties", "type": _NULLABLE, "default": None},
    ],
    CUSTOM: [
        {"name": "name", "type": "string"},
        {"name": "properties", "type": _NULLABLE, "default": None},
    ],
    EMAIL_CLICK: [
        *_CAMPAIGN,
        {"name": "email_address", "type": _NULLABLE, "default": None},
        {"name": "url", "type": _NULLABLE, "default": None},
    ],
    CARD_CLICK: [*_CAMPAIGN, {"name": "content_card_id", "type": "string"}],
    CARD_IMPRESSION: [*_CAMPAIGN, {"name": "content_card_id", "type": "string"}],
    SESSION_START: [{"name": "session_id", "type": "string"}],
}


def schema(event_type: str) -> dict[str, Any]:
    name = event_type.rsplit(".", 1)[-1]
    return {
        "type": "record",
        "name": f"{name}Event",
        "namespace": "com.braze.currents",
        "fields": [*_COMMON, *FIELDS[event_type]],
    }


def key(event_type: str, name: str = "part-0") -> str:
    """Where Currents puts such a file (its own layout, the event type in the key)."""
    return (
        "currents/dataexport.prod-01.S3.integration.abc123/"
        f"event_type={event_type}/date=2026-12-01-10/321/0/{name}.avro"
    )


def write(
    folder: Path, event_type: str, records: Iterable[dict[str, Any]], name: str = "part-0"
) -> Path:
    path = folder / key(event_type, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema(event_type)), records)
    return path


def purchase(n: int, user: str | None, item: str, price: float, ts: int) -> dict[str, Any]:
    return {
        "id": f"purchase-{n}",
        "user_id": f"braze-{user}",
        "external_user_id": user,
        "time": ts,
        "product_id": item,
        "price": price,
        "currency": "EUR",
        "quantity": 1,
        "properties": '{"colour":"red"}',
    }


def email_click(n: int, user: str, url: str, ts: int, campaign: str = "cmp-mail") -> dict[str, Any]:
    return {
        "id": f"click-{n}",
        "user_id": f"braze-{user}",
        "external_user_id": user,
        "time": ts,
        "campaign_id": campaign,
        "url": url,
    }


def card(n: int, user: str, campaign: str, ts: int) -> dict[str, Any]:
    return {
        "id": f"card-{n}",
        "user_id": f"braze-{user}",
        "external_user_id": user,
        "time": ts,
        "campaign_id": campaign,
        "content_card_id": f"cc-{n}",
        "send_id": f"send-{n}",
    }


def create_served_table(client: Any, name: str) -> None:
    """The served table as deploy/infrastructure.yaml makes it (keys and TTL), as run-aws
    makes it in moto."""
    run_aws.create_served_table(client, name)


def s3_event(bucket: str, *keys: str) -> dict[str, Any]:
    """An S3 ObjectCreated notification as Lambda hands it over (keys URL-encoded)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(k, safe="/")}},
            }
            for k in keys
        ]
    }


class Clock:
    """Stands for the `time` module of a loop's module (monkeypatched in): now moves only when
    a test says so, so that a claim's lease runs out without waiting for it."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def invocation_record(event: dict[str, Any], error: BaseException, at: float) -> dict[str, Any]:
    """What Lambda sends an on-failure destination once an asynchronous event failed its last
    retry (AWS Lambda guide, "Capturing records of Lambda asynchronous invocations"): the
    event as `requestPayload`, the error as `responsePayload`, the time of that last attempt."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return {
        "version": "1.0",
        "timestamp": stamp.replace("+00:00", "Z"),
        "requestContext": {
            "requestId": "e4b46cbf-b738-4a1c-8880-a18cdf61200e",
            "functionArn": (
                "arn:aws:lambda:us-east-1:123456789012:function:"
                "braze-personalize-recs-dev-ingest_currents:$LATEST"
            ),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


def lambda_gives_up(queue_url: str, event: dict[str, Any], error: BaseException, at: float) -> None:
    """Lambda's delivery to the on-failure destination (SendMessage with the function's role,
    whose credentials `chalicelib.aws` clients carry under `iam_support.acting_as`)."""
    import json

    from chalicelib import aws

    aws.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(invocation_record(event, error, at))
    )


def aws_stage(monkeypatch: Any, dead_letter_queue: str, **settings: str) -> None:
    """Inside moto: the `personalize` stage `ingest_currents` runs in (its settings in the
    environment, the import bucket, the dead-letter queue and the served table), plus
    `settings`."""
    import boto3

    values = {
        "RECS_PROVIDER": "personalize",
        "RECS_TRACKING_ID": TRACKING,
        "RECS_SERVED_TABLE": TABLE,
        "RECS_DEAD_LETTER_QUEUE": dead_letter_queue,
        "RECS_IMPORT_BUCKET": BUCKET,
        **settings,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=dead_letter_queue)
    create_served_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
