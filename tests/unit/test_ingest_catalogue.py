"""Items forwarded from the events queue also reach the DynamoDB item table that decorates
responses on AWS (the same table `POST /items` writes)."""

from __future__ import annotations

import boto3
import pytest

from chalicelib import aws
from chalicelib.handlers import ingest
from chalicelib.providers.personalize import items_table
from tests.ingest_support import REGION, FakeEvents, Queues, settings

TABLE = "recs-items"


@pytest.fixture
def table(fake_events: FakeEvents) -> str:
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return TABLE


def test_forwarded_items_update_the_item_table(
    fake_events: FakeEvents, queues: Queues, table: str
) -> None:
    queues.send(
        {
            "type": "items",
            "items": [
                {"item_id": "i1", "properties": {"NAME": "Lamp", "PRICE": 30.5}},
                {"item_id": "i2", "properties": {"name": "Rug", "category": "home"}},
            ],
        }
    )
    ingest.handle_sqs(queues.receive_event(), settings(items_table=table))
    assert len(fake_events.items) == 2
    assert items_table.get_items(table, ["i1", "i2"]) == {
        "i1": {"name": "Lamp", "price": 30.5},
        "i2": {"name": "Rug", "category": "home"},
    }


def test_items_personalize_refused_stay_out_of_the_table(
    fake_events: FakeEvents, queues: Queues, table: str
) -> None:
    fake_events.refuse = lambda op, body: "InvalidInputException" if op == "items" else None
    queues.send({"type": "items", "items": [{"item_id": "i1", "properties": {"name": "x"}}]})
    ingest.handle_sqs(queues.receive_event(), settings(items_table=table))
    assert items_table.get_items(table, ["i1"]) == {}


def test_a_table_error_does_not_resend_accepted_items(
    fake_events: FakeEvents, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens
    aws.reset()
    aws.override("personalize-events", fake_events_client(fake_events))
    queues.send({"type": "items", "items": [{"item_id": "i1", "properties": {"name": "x"}}]})
    event = queues.receive_event()
    assert ingest.handle_sqs(event, settings(items_table=TABLE)) == {"batchItemFailures": []}
    assert fake_events.calls["items"] == 1


def fake_events_client(fake: FakeEvents) -> object:
    client = aws.client("personalize-events")
    client.meta.events.register_first("before-send.personalize-events.*", fake.send)
    return client


def test_an_item_update_replaces_the_whole_record_on_both_sides(
    fake_events: FakeEvents, queues: Queues, table: str
) -> None:
    """PutItems replaces an item's record on Personalize; the item table does the same, so a
    partial update never leaves the two disagreeing (the field left out is gone from both)."""
    first = {"item_id": "i1", "properties": {"name": "Lamp", "price": 30.5, "category": "home"}}
    queues.send({"type": "items", "items": [first]})
    ingest.handle_sqs(queues.receive_event(), settings(items_table=table))
    queues.send({"type": "items", "items": [{"item_id": "i1", "properties": {"name": "Lamp 2"}}]})
    ingest.handle_sqs(queues.receive_event(), settings(items_table=table))
    assert fake_events.items[-1] == {"itemId": "i1", "properties": '{"name":"Lamp 2"}'}
    assert items_table.get_items(table, ["i1"]) == {"i1": {"name": "Lamp 2"}}


def test_the_client_under_test_is_the_one_the_lambda_makes(fake_events: FakeEvents) -> None:
    """Production skips botocore's validation for personalize-events (the models check every
    limit first): a request botocore would refuse reaches the fake, whose model checks catch
    it. So the tests exercise the client the Lambda uses, not a validating one."""
    from botocore.exceptions import ClientError

    fake_events.expect_violations = True
    with pytest.raises(ClientError, match="InvalidInputException"):
        aws.client("personalize-events").put_events(
            trackingId="t", sessionId="s", eventList=[{"eventType": "view", "itemId": "i"}]
        )
    assert fake_events.violations == ["PutEvents.eventList[0]: missing required member 'sentAt'"]
