"""SQS and Kinesis forwarding: nothing valid lost, nothing accepted sent twice, bad records in
the dead-letter queue with their reason, the fewest PutEvents calls."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import aws
from chalicelib.handlers import ingest
from chalicelib.providers.personalize.ingest import requeue
from tests.ingest_support import (
    REGION,
    FakeEvents,
    Queues,
    events,
    settings,
    shop_config,
)


def accepted_items(fake: FakeEvents) -> Counter[str]:
    return Counter(e["itemId"] for e in fake.accepted)


def test_batch_with_one_invalid_and_one_throttled_message(
    fake_events: FakeEvents, queues: Queues
) -> None:
    good = [events(f"u{n}", f"item-{n}") for n in range(8)]
    queues.send(*good, "{not json", events("slow", "item-slow"))
    throttling = {"on": True}
    fake_events.refuse = lambda op, body: (
        "ThrottlingException" if throttling["on"] and body.get("userId") == "slow" else None
    )

    with pytest.raises(ingest.RetryLater, match="1 of 10"):
        ingest.handle_sqs(queues.receive_event(), settings())

    assert accepted_items(fake_events) == Counter(f"item-{n}" for n in range(8))
    [letter] = queues.dead_letters()
    assert letter["reason"] == "the body is not valid JSON"
    assert letter["body"] == "{not json"
    redelivered = queues.receive_event()
    assert [json.loads(r["body"])["user_id"] for r in redelivered["Records"]] == ["slow"]

    throttling["on"] = False
    assert ingest.handle_sqs(redelivered, settings()) == {"batchItemFailures": []}
    assert accepted_items(fake_events) == Counter([*(f"item-{n}" for n in range(8)), "item-slow"])


def test_batch_item_failures_are_returned_when_the_mapping_reports_them(
    fake_events: FakeEvents, queues: Queues
) -> None:
    queues.send(events("a", "1"), events("slow", "2"))
    fake_events.refuse = lambda op, body: (
        "ServiceUnavailable" if body.get("userId") == "slow" else None
    )
    event = queues.receive_event()
    slow_id = next(r["messageId"] for r in event["Records"] if "slow" in r["body"])
    out = ingest.handle_sqs(event, settings(sqs_batch_item_failures=True))
    assert out == {"batchItemFailures": [{"itemIdentifier": slow_id}]}
    assert accepted_items(fake_events) == Counter(["1"])


def test_events_of_one_session_are_packed_ten_a_call_and_never_split(
    fake_events: FakeEvents, queues: Queues
) -> None:
    queues.send(*[events("u1", f"i{n}") for n in range(10)])
    queues.send(events("u1", *[f"j{n}" for n in range(6)]))
    queues.send(events("u1", *[f"k{n}" for n in range(6)]))
    event = queues.receive_event(visibility=60)
    event["Records"] += queues.receive_event(visibility=60)["Records"]
    assert len(event["Records"]) == 12
    ingest.handle_sqs(event, settings())
    assert len(fake_events.accepted) == 22
    # 10 single events fill one call; 6 and 6 cannot share one without splitting a message.
    assert fake_events.calls["events"] == 3


def test_several_sessions_in_one_message_go_to_their_own_calls(
    fake_events: FakeEvents, queues: Queues
) -> None:
    queues.send(
        [
            events("u1", "a", session="s1"),
            events("u1", "b", session="s2"),
            events("u2", "c"),
            {"type": "users", "users": [{"user_id": "u2", "properties": {"COUNTRY": "UK"}}]},
        ]
    )
    ingest.handle_sqs(queues.receive_event(), settings())
    sessions = {(e["userId"], e["sessionId"], e["itemId"]) for e in fake_events.accepted}
    assert sessions == {("u1", "s1", "a"), ("u1", "s2", "b"), ("u2", "u2", "c")}
    assert fake_events.calls["events"] == 3
    assert fake_events.users == [{"userId": "u2", "properties": '{"country":"UK"}'}]


def test_a_partly_accepted_message_requeues_only_its_unfinished_envelopes(
    fake_events: FakeEvents, queues: Queues
) -> None:
    queues.send([events("u1", "a"), events("slow", "b")])
    fake_events.refuse = lambda op, body: (
        "ThrottlingException" if body.get("userId") == "slow" else None
    )
    event = queues.receive_event()
    assert ingest.handle_sqs(event, settings()) == {"batchItemFailures": []}
    queues.lambda_deletes(event)
    assert accepted_items(fake_events) == Counter(["a"])
    [requeued] = queues.receive_event()["Records"]
    assert [e["user_id"] for e in json.loads(requeued["body"])] == ["slow"]


def test_personalize_refusing_a_packed_call_isolates_the_bad_envelope(
    fake_events: FakeEvents, queues: Queues
) -> None:
    queues.send(events("u1", "ok-1"), events("u1", "rejected"), events("u1", "ok-2"))
    fake_events.refuse = lambda op, body: (
        "InvalidInputException"
        if any(e["itemId"] == "rejected" for e in body.get("eventList", []))
        else None
    )
    ingest.handle_sqs(queues.receive_event(), settings())
    assert accepted_items(fake_events) == Counter(["ok-1", "ok-2"])
    [letter] = queues.dead_letters()
    assert letter["reason"].startswith("InvalidInputException")
    assert json.loads(letter["body"])["events"][0]["item_id"] == "rejected"


def test_a_wrong_tracking_id_is_retried_not_dead_lettered(
    fake_events: FakeEvents, queues: Queues
) -> None:
    """PutEvents answers a bad tracker with InvalidInputException too: the stage is wrong, not
    the events, so they wait in the queue for the fix instead of all going to the DLQ."""
    queues.send(events("u1", "a"), events("u2", "b"))
    broken = {"on": True}
    fake_events.refuse = lambda op, body: (
        ("InvalidInputException", "Invalid trackingId: 1d4e-unknown") if broken["on"] else None
    )
    with pytest.raises(ingest.RetryLater, match="2 of 2"):
        ingest.handle_sqs(queues.receive_event(), settings())
    assert queues.dead_letters() == []
    broken["on"] = False
    assert ingest.handle_sqs(queues.receive_event(), settings()) == {"batchItemFailures": []}
    assert accepted_items(fake_events) == Counter(["a", "b"])


def test_each_event_keeps_its_time_and_gets_a_stable_id(
    fake_events: FakeEvents, queues: Queues, tmp_path: Path
) -> None:
    config = shop_config(tmp_path, fake_events)
    queues.send(events("u1", "a", "b", properties={"DISCOUNT": "yes"}, impression=["a", "c"]))
    event = queues.receive_event()
    ingest.handle_sqs(event, settings(config=config))
    ingest.handle_sqs(event, settings(config=config))  # a redelivery: the same ids
    first, second, again, _ = fake_events.accepted
    assert (first["sentAt"], second["sentAt"]) == (1_700_000_000, 1_700_000_001)
    assert first["properties"] == '{"discount":"yes"}'
    assert first["impression"] == ["a", "c"]
    assert first["eventId"] != second["eventId"]
    assert again["eventId"] == first["eventId"]


def _limit_case(**event: Any) -> dict[str, Any]:
    envelope = events("u", "i")
    envelope["events"][0].update(event)
    return envelope


@pytest.mark.parametrize(
    ("envelope", "ok"),
    [
        (events("u" * 256, "i" * 256), True),
        (events("u" * 257, "i"), False),
        (events("u", "i" * 257), False),
        (events("u", *[f"i{n}" for n in range(10)]), True),
        (events("u", *[f"i{n}" for n in range(11)]), False),
        (_limit_case(properties={"k": "x" * 1016}), True),  # 1,024 characters of JSON
        (_limit_case(properties={"k": "x" * 1017}), False),
        (_limit_case(impression=["i"] * 25), True),
        (_limit_case(impression=["i"] * 26), False),
        (_limit_case(recommendation_id="r" * 40), True),
        (_limit_case(recommendation_id="r" * 41), False),
        (events("ü-🛒-用户", "商品-é"), True),
        ({"type": "events", "user_id": "u", "events": []}, False),
        ({"type": "clicks", "user_id": "u"}, False),
        ({"type": "items", "items": [{"item_id": "i", "properties": {}}]}, False),
        (_limit_case(timestamp="yesterday"), False),
    ],
)
def test_limits_at_and_over_each_boundary(
    fake_events: FakeEvents, queues: Queues, envelope: dict[str, Any], ok: bool
) -> None:
    queues.send(envelope)
    ingest.handle_sqs(queues.receive_event(), settings())
    letters = queues.dead_letters()
    assert (len(fake_events.accepted) > 0, len(letters)) == ((True, 0) if ok else (False, 1))
    if not ok:
        assert letters[0]["reason"].startswith("invalid envelope")
        assert json.loads(letters[0]["body"]) == envelope
    else:
        assert fake_events.accepted[0]["userId"] == envelope["user_id"]


def test_users_and_items_are_packed_ten_a_call(fake_events: FakeEvents, queues: Queues) -> None:
    for n in range(3):
        queues.send(
            {
                "type": "items",
                "items": [{"item_id": f"i{n}-{k}", "properties": {"price": k}} for k in range(4)],
            }
        )
    ingest.handle_sqs(queues.receive_event(), settings())
    assert len(fake_events.items) == 12
    assert fake_events.calls["items"] == 2  # 4+4 in one call, 4 in the next


def test_without_a_dead_letter_queue_invalid_messages_stay_in_the_queue(
    fake_events: FakeEvents, queues: Queues
) -> None:
    """They are then parked by the queue's own redrive policy rather than dropped."""
    queues.send("[]", events("u", "i"))
    with pytest.raises(ingest.RetryLater):
        ingest.handle_sqs(queues.receive_event(), settings(dead_letter_queue=""))
    assert [r["body"] for r in queues.receive_event()["Records"]] == ["[]"]


def _kinesis_event(stream: str, bodies: list[bytes]) -> dict[str, Any]:
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    for body in bodies:
        kinesis.put_record(StreamName=stream, Data=body, PartitionKey="p")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    return {
        "Records": [
            {
                "kinesis": {
                    "data": base64.b64encode(r["Data"]).decode(),
                    "sequenceNumber": r["SequenceNumber"],
                    "partitionKey": r["PartitionKey"],
                },
                "eventSource": "aws:kinesis",
                "eventSourceARN": arn,
            }
            for r in records
        ]
    }


def test_a_poison_kinesis_record_never_blocks_its_shard(
    fake_events: FakeEvents, queues: Queues
) -> None:
    bodies = [json.dumps(events(f"u{n}", f"k{n}")).encode() for n in range(5)]
    bodies.insert(2, b"\xff\xfe poison")
    event = _kinesis_event("recs-stream", bodies)
    assert ingest.handle_kinesis(event, settings()) is None
    assert accepted_items(fake_events) == Counter(f"k{n}" for n in range(5))
    [letter] = queues.dead_letters()
    assert letter["reason"] == "the body is not valid JSON"
    assert base64.b64decode(letter["body_base64"]) == b"\xff\xfe poison"


def test_throttled_kinesis_records_are_handed_to_the_events_queue(
    fake_events: FakeEvents, queues: Queues
) -> None:
    bodies = [json.dumps(events(u, f"item-{u}")).encode() for u in ("a", "slow", "b")]
    fake_events.refuse = lambda op, body: (
        "ThrottlingException" if body.get("userId") == "slow" else None
    )
    ingest.handle_kinesis(_kinesis_event("recs-stream-2", bodies), settings())
    assert accepted_items(fake_events) == Counter(["item-a", "item-b"])
    [handed] = queues.receive_event()["Records"]
    fake_events.refuse = lambda op, body: None
    ingest.handle_sqs({"Records": [{**handed, "body": handed["body"]}]}, settings())
    assert accepted_items(fake_events) == Counter(["item-a", "item-b", "item-slow"])


def test_kinesis_retries_the_batch_only_when_nothing_can_take_the_failed_records(
    fake_events: FakeEvents, queues: Queues
) -> None:
    fake_events.refuse = lambda op, body: "ThrottlingException"
    event = _kinesis_event("recs-stream-3", [json.dumps(events("a", "x")).encode()])
    for record in event["Records"]:
        record["eventSourceARN"] = "arn:aws:kinesis:us-east-1:123456789012:stream/gone"
    with pytest.raises(ingest.RetryLater):
        ingest.handle_kinesis(event, settings(events_queue=""))


def test_kinesis_with_the_queue_unreachable_never_resends_accepted_events(
    fake_events: FakeEvents, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PutEvents throttles one user while the events queue cannot be reached: the throttled
    record goes back to the stream, with the event ids of its first attempt, and the batch is
    not retried, so the events Personalize took are never sent again."""
    stream = "recs-stream-4"
    bodies = [json.dumps(events(u, f"item-{u}")).encode() for u in ("a", "slow", "b")]
    event = _kinesis_event(stream, bodies)
    tried: list[str] = []

    def throttle(op: str, body: dict[str, Any]) -> str | None:
        if body.get("userId") != "slow":
            return None
        tried.extend(e["eventId"] for e in body["eventList"])
        return "ThrottlingException"

    fake_events.refuse = throttle
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")  # nothing listens
    aws.reset()
    fake_client = aws.client("personalize-events")
    fake_client.meta.events.register_first("before-send.personalize-events.*", fake_events.send)
    requeue.forget_queue_urls()

    assert ingest.handle_kinesis(event, settings()) is None
    assert accepted_items(fake_events) == Counter(["item-a", "item-b"])

    kinesis = boto3.client("kinesis", region_name=REGION)
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard,
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber=event["Records"][-1]["kinesis"]["sequenceNumber"],
    )["ShardIterator"]
    [again] = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert again["PartitionKey"] == "p"
    retry = {
        "Records": [
            {
                **event["Records"][0],
                "kinesis": {
                    "data": base64.b64encode(again["Data"]).decode(),
                    "sequenceNumber": again["SequenceNumber"],
                    "partitionKey": again["PartitionKey"],
                },
            }
        ]
    }
    fake_events.refuse = lambda op, body: None
    assert ingest.handle_kinesis(retry, settings()) is None
    assert accepted_items(fake_events) == Counter(["item-a", "item-b", "item-slow"])
    [slow] = [e for e in fake_events.accepted if e["userId"] == "slow"]
    assert tried and set(tried) == {slow["eventId"]}


def test_requeued_envelopes_keep_the_event_ids_of_their_first_attempt(
    fake_events: FakeEvents, queues: Queues
) -> None:
    """A PutEvents that failed after Personalize took it (a timeout) is sent again from the
    requeued message with the same event ids, which Personalize ignores for training."""
    queues.send([events("u1", "a"), events("slow", "b", "c")])
    first_ids: list[str] = []

    def timeout_once(op: str, body: dict[str, Any]) -> str | None:
        if body.get("userId") == "slow" and not first_ids:
            first_ids.extend(e["eventId"] for e in body["eventList"])
            return "ServiceUnavailable"
        return None

    fake_events.refuse = timeout_once
    event = queues.receive_event()
    assert ingest.handle_sqs(event, settings()) == {"batchItemFailures": []}
    queues.lambda_deletes(event)
    requeued = queues.receive_event()
    ingest.handle_sqs(requeued, settings())
    slow = [e["eventId"] for e in fake_events.accepted if e["userId"] == "slow"]
    assert len(first_ids) == 2
    assert slow == first_ids


def test_properties_reach_personalize_as_camel_case_schema_fields(
    fake_events: FakeEvents, queues: Queues, tmp_path: Path
) -> None:
    """Keys match schema fields in camelCase (NUMBER_OF_RATINGS is numberOfRatings), several
    categorical values are joined with `|`, and keys no field matches (an image URL kept for
    the catalogue) stay out of the call."""
    config = shop_config(tmp_path, fake_events)
    item = {
        "NUMBER_OF_RATINGS": 12,
        "genres": ["Horror", "Action"],
        "Name": "Night",
        "image_url": "https://shop.example/i.jpg",
    }
    queues.send(
        {"type": "items", "items": [{"item_id": "i1", "properties": item}]},
        events("u1", "i1", properties={"discount_code": "x", "Discount": "spring"}),
    )
    ingest.handle_sqs(queues.receive_event(), settings(config=config))
    [sent] = fake_events.items
    assert json.loads(sent["properties"]) == {
        "numberOfRatings": 12,
        "genres": "Horror|Action",
        "name": "Night",
    }
    [accepted] = fake_events.accepted
    assert json.loads(accepted["properties"]) == {"discount": "spring"}


def test_the_chalice_handlers_forward_through_the_lambda_entry_points(
    fake_events: FakeEvents, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalice.test import Client

    from chalicelib.settings import PROJECT_ROOT
    from tests.app_loader import load_app

    app = load_app(RECS_EVENTS_QUEUE="recs-events", RECS_EVENTS_STREAM="recs-stream")

    for key, value in {
        "RECS_TRACKING_ID": "tracker-1",
        "RECS_EVENTS_QUEUE": "recs-events",
        "RECS_DEAD_LETTER_QUEUE": "recs-events-dlq",
    }.items():
        monkeypatch.setenv(key, value)
    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as client:
        bodies = [json.dumps(events("u1", "a")), json.dumps(events("u2", "b"))]
        sqs_event = client.events.generate_sqs_event(bodies, queue_name="recs-events")
        for n, record in enumerate(sqs_event["Records"]):
            record["messageId"] = f"m{n}"  # the generator gives every record the same id
        assert client.lambda_.invoke("ingest_sqs", sqs_event).payload == {"batchItemFailures": []}
        kinesis_event = client.events.generate_kinesis_event(
            [json.dumps(events("u3", "c")).encode()], stream_name="recs-stream"
        )
        client.lambda_.invoke("ingest_kinesis", kinesis_event)
    assert accepted_items(fake_events) == Counter(["a", "b", "c"])
