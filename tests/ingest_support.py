"""A fake personalize-events service behind botocore's `before-send` hook (requests are serialised
and validated against the real service model, replies parsed as real ones), plus moto queues."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from chalicelib import aws, ingest
from chalicelib.settings import Settings
from tests.personalize_fakes import reply

REGION = "us-east-1"
GROUP_ARN = f"arn:aws:personalize:{REGION}:123456789012:dataset-group/braze-shop"
QUEUE, DLQ = "recs-events", "recs-events-dlq"


@dataclass
class FakeEvents:
    """Accepts every call except those `refuse` answers for; records what was accepted."""

    accepted: list[dict[str, Any]] = field(default_factory=list)  # events, with user and session
    users: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    # (operation, request body) -> error code to answer with, or None to accept
    # An error code, or (code, message); None accepts the call.
    refuse: Callable[[str, dict[str, Any]], str | tuple[str, str] | None] = lambda op, body: None

    def send(self, request: Any, **_: Any) -> AWSResponse:
        operation = request.url.rsplit("/", 1)[-1]
        body = json.loads(request.body)
        self.calls[operation] += 1
        error = self.refuse(operation, body)
        if isinstance(error, tuple):
            return reply(400, {"message": error[1]}, error[0])
        if error == "ThrottlingException":
            return reply(400, {"message": "Rate exceeded"}, error)
        if error == "ServiceUnavailable":
            return reply(503, {"message": "try later"}, error)
        if error:
            return reply(400, {"message": f"refused: {error}"}, error)
        if operation == "events":
            self.accepted += [
                {**e, "userId": body.get("userId"), "sessionId": body["sessionId"]}
                for e in body["eventList"]
            ]
        elif operation == "users":
            self.users += body["users"]
        elif operation == "items":
            self.items += body["items"]
        return reply(200, {})


@pytest.fixture
def fake_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEvents]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    fake = FakeEvents()
    with mock_aws():
        aws.reset()
        ingest._queue_urls.clear()
        client = boto3.client("personalize-events", region_name=REGION)
        client.meta.events.register("before-send.personalize-events.*", fake.send)
        aws.override("personalize-events", client)
        yield fake
    aws.reset()
    ingest._queue_urls.clear()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "personalize",
        "tracking_id": "tracker-1",
        "dataset_group_arn": GROUP_ARN,
        "events_queue": QUEUE,
        "dead_letter_queue": DLQ,
    }
    return Settings(**(values | overrides))


@dataclass
class Queues:
    sqs: Any
    url: str
    dlq_url: str
    arn: str

    def send(self, *bodies: str | dict[str, Any] | list[Any]) -> None:
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            self.sqs.send_message(QueueUrl=self.url, MessageBody=text)

    def receive_event(self, limit: int = 10, visibility: int = 0) -> dict[str, Any]:
        """What Lambda would hand `ingest_sqs`: real message ids and receipt handles."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=limit, VisibilityTimeout=visibility
        ).get("Messages", [])
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def lambda_deletes(self, event: dict[str, Any]) -> None:
        """What Lambda does with a batch whose handler returned normally."""
        for record in event["Records"]:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=record["receiptHandle"])

    def dead_letters(self) -> list[dict[str, Any]]:
        found = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return found
            for m in got["Messages"]:
                found.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def queues(fake_events: FakeEvents) -> Queues:
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    # Visibility 0: a message that was not deleted can be received again at once (a redelivery).
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Queues(sqs, url, dlq, arn)


def events(user: str, *items: str, session: str | None = None, **extra: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "type": "events",
        "user_id": user,
        "events": [
            {"event_type": "purchase", "item_id": item, "timestamp": 1_700_000_000 + n, **extra}
            for n, item in enumerate(items)
        ],
    }
    if session:
        envelope["session_id"] = session
    return envelope
