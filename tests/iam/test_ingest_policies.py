"""`ingest_sqs` and `ingest_kinesis`, each under its own policy, with moto's IAM authorization
(tests.iam_support): their work succeeds, every granted action is called (by them or by Lambda's
polling), and without any one statement their work fails."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from chalicelib.handlers import ingest
from tests import iam_support
from tests.iam_support import (
    BY_LAMBDA,
    LOGS,
    REGION,
    Deployed,
    granted,
    without,
)
from tests.ingest_support import FakeEvents, events

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
