"""A fake personalize-events service behind botocore's `before-send` hook of the production client
(`chalicelib.aws`'s, which skips botocore's parameter validation): each request is checked against
the service model, maxima, patterns and enums included (`tests.service_model`), and against the
documented rules the model does not carry; replies are parsed as real ones. Plus moto queues."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from chalicelib import aws
from chalicelib.config import DEFAULT_SCHEMAS
from chalicelib.providers.personalize.ingest import calls as pe
from chalicelib.providers.personalize.ingest import requeue
from chalicelib.settings import Settings
from tests import iam_support
from tests.personalize_fakes import reply
from tests.service_model import check

REGION = "us-east-1"
GROUP_ARN = f"arn:aws:personalize:{REGION}:123456789012:dataset-group/braze-shop"
QUEUE, DLQ = "recs-events", "recs-events-dlq"
OPERATIONS = {"events": "PutEvents", "users": "PutUsers", "items": "PutItems"}
TRACKERS = f"arn:aws:personalize:{REGION}:123456789012:event-tracker"
# PutEvents refuses these as property keys, whatever their case (its documentation).
RESERVED_EVENT_KEYS = {"userid", "sessionid", "eventtype", "timestamp", "recommendationid"}
RESERVED_EVENT_KEYS.add("impression")


def schema_properties(schemas: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """The camelCase property keys each dataset's schema matches (Personalize's documented
    rule: `numberOfRatings` is the NUMBER_OF_RATINGS field)."""
    out = {}
    for dataset, fields in schemas.items():
        members = pe.EVENT_COLUMNS if dataset == "interactions" else pe.ID_COLUMNS
        out[dataset] = {_camel(f) for f in fields if f not in members}
    return out


def _camel(field: str) -> str:
    first, *rest = field.lower().split("_")
    return first + "".join(p.capitalize() for p in rest)


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
    # Requests the real service would refuse (the model's constraints or its documented rules);
    # the fixture fails the test on any unless `expect_violations` is set.
    violations: list[str] = field(default_factory=list)
    expect_violations: bool = False
    properties: dict[str, set[str]] = field(
        default_factory=lambda: schema_properties(DEFAULT_SCHEMAS)
    )
    # tracking id -> event tracker ARN, the resource IAM checks PutEvents against
    trackers: dict[str, str] = field(default_factory=dict)

    def send(self, request: Any, **_: Any) -> AWSResponse:
        operation = request.url.rsplit("/", 1)[-1]
        body = json.loads(request.body)
        self.calls[operation] += 1
        problems = check("personalize-events", OPERATIONS[operation], body) or self.rules(
            operation, body
        )
        if problems:
            self.violations += problems
            return reply(400, {"message": "; ".join(problems)}, "InvalidInputException")
        denied = self.denied(operation, body)
        if denied:
            return reply(400, {"message": denied}, "AccessDeniedException")
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

    def denied(self, operation: str, body: dict[str, Any]) -> str | None:
        """What the calling function's policy (tests.iam_support) does not allow, if any."""
        caller = iam_support.current()
        if caller is None:
            return None
        if operation == "events":
            tracker = body["trackingId"]
            resource = self.trackers.get(tracker, f"{TRACKERS}/{tracker}")
        else:
            resource = body["datasetArn"]
        action = f"personalize:{OPERATIONS[operation]}"
        if caller.authorize(action, resource):
            return None
        return f"not authorized to perform {action} on {resource}"

    def rules(self, operation: str, body: dict[str, Any]) -> list[str]:
        """Personalize's documented rules on properties, which its model cannot say: a JSON
        object whose keys are the camelCase names of the dataset's schema fields (PutEvents:
        none of its own members)."""
        problems = []
        records = body.get("eventList") or body.get("users") or body.get("items") or []
        dataset = {"events": "interactions"}.get(operation, operation)
        for n, record in enumerate(records):
            if "properties" not in record:
                continue
            properties = json.loads(record["properties"])
            if not isinstance(properties, dict):
                problems.append(f"{operation}[{n}].properties: not a JSON object")
                continue
            for key in properties:
                if operation == "events" and key.lower() in RESERVED_EVENT_KEYS:
                    problems.append(f"{operation}[{n}].properties: reserved key {key!r}")
                elif key not in self.properties.get(dataset, set()):
                    problems.append(f"{operation}[{n}].properties: {key!r} is no schema field")
        return problems


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
        requeue.forget_queue_urls()
        # The production client (no botocore validation), as the Lambda makes it.
        client = aws.client("personalize-events")
        client.meta.events.register_first("before-send.personalize-events.*", fake.send)
        yield fake
    aws.reset()
    requeue.forget_queue_urls()
    if not fake.expect_violations:
        assert fake.violations == [], fake.violations


SHOP_TOML = """
[[solutions]]
name = "user-personalization"
recipe = "user-personalization"

[schemas.interactions]
USER_ID = "string"
ITEM_ID = "string"
EVENT_TYPE = "string"
TIMESTAMP = "long"
DISCOUNT = "string categorical nullable"

[schemas.items]
ITEM_ID = "string"
NAME = "string textual nullable"
GENRES = "string categorical nullable"
NUMBER_OF_RATINGS = "int nullable"
"""


def shop_config(folder: Path, fake: FakeEvents) -> Path:
    """A recs.toml whose schemas have metadata columns, and the fake told the same schemas."""
    from chalicelib.config import load_config

    path = folder / "recs.toml"
    path.write_text(SHOP_TOML)
    fake.properties = schema_properties(dict(load_config(path).schemas))
    return path


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
