"""`ingest_currents` under its own policy, with moto's IAM authorization (tests.iam_support):
a Currents file is read, its records claimed, joined, forwarded, dead-lettered or released, and
the S3 event Lambda gives up on after its retries lands in the Currents failures queue (Lambda
sends it with the function's role); every granted action is used, and without any one statement
the work fails."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.handlers import currents
from tests import currents_support as cs
from tests import iam_support
from tests.iam_support import LOGS, REGION, Deployed, granted, without
from tests.ingest_support import FakeEvents

NOW = int(time.time())


def run_currents(
    d: Deployed, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[bool, iam_support.Caller]:
    """Purchases (one refused as invalid: dead-lettered; one throttled: released for the next
    delivery) and a Content Card click joined to a served list."""
    from chalicelib import aws
    from chalicelib.providers.personalize.loop import DynamoLoop
    from chalicelib.vocabulary import ServedList

    DynamoLoop(d.settings).record_served(
        ServedList(
            "RID-1", "u1", ["i1", "i2"], "recommendations", "personalized", NOW - 60, None, "cmp"
        )
    )
    rows = [cs.purchase(n, user, f"i{n}", 2.0, NOW) for n, user in enumerate(["u1", "u2", "slow"])]
    rows.append(cs.purchase(3, "u3", "bad", 2.0, NOW))
    buys = cs.write(tmp_path, cs.PURCHASE, rows)
    cards = cs.write(tmp_path, cs.CARD_CLICK, [cs.card(1, "u1", "cmp", NOW)])
    s3 = boto3.client("s3", region_name=REGION)
    bucket = d.settings.import_bucket
    keys = [cs.key(cs.PURCHASE), cs.key(cs.CARD_CLICK)]
    for path, key in zip([buys, cards], keys, strict=True):
        s3.upload_file(str(path), bucket, key)
    sqs = boto3.client("sqs", region_name=REGION)
    failures = sqs.get_queue_url(QueueName=d.settings.currents_failures_queue)["QueueUrl"]
    event = cs.s3_event(bucket, *keys)
    with iam_support.acting_as(policy, monkeypatch) as caller:
        fake = FakeEvents()
        fake.trackers[d.settings.tracking_id] = d.names.tracker_arn
        client = aws.client("personalize-events")
        client.meta.events.register_first("before-send.personalize-events.*", fake.send)

        def refuse(op: str, body: dict[str, Any]) -> Any:
            if body.get("userId") == "slow":
                return "ThrottlingException"
            if body["eventList"][0]["itemId"] == "bad":
                return ("InvalidInputException", "bad item")
            return None

        fake.refuse = refuse
        try:
            currents.handle_s3(event, d.settings)
            raised = False
        except currents.CurrentsRetryError as exc:
            raised = True
            try:  # the retries fail alike: Lambda keeps the event in the failures queue
                cs.lambda_gives_up(failures, event, exc, time.time())
            except Exception:
                return False, caller
        except Exception:  # a refused call the handler cannot take in its stride
            return False, caller
    dlq = sqs.get_queue_url(QueueName=d.settings.dead_letter_queue)["QueueUrl"]
    letters = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    table = boto3.client("dynamodb", region_name=REGION)
    items = table.scan(TableName=d.settings.served_table)["Items"]
    claims = {i["pk"]["S"] for i in items if i["sk"]["S"] == "C"}
    clicks = [i for i in items if i["sk"]["S"].startswith("E#") and i["kind"]["S"] == "click"]
    kept = sqs.receive_message(QueueUrl=failures).get("Messages", [])
    ok = raised and sorted(e["itemId"] for e in fake.accepted) == ["i0", "i1"]
    ok = ok and [json.loads(m["Body"])["requestPayload"] for m in kept] == [event]
    ok = ok and len(letters) == 1 and "C#purchase-2" not in claims and len(clicks) == 1
    return ok and not caller.denied, caller


def test_ingest_currents_works_under_its_policy_and_uses_all_of_it(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = deployed.documents["ingest_currents"]
    ok, caller = run_currents(deployed, policy, monkeypatch, tmp_path)
    assert ok, caller.denied
    assert granted(policy) - caller.actions() <= LOGS


@pytest.mark.parametrize(
    "sid", ["ReadCurrents", "ServedTable", "PutEvents", "DeadLetters", "FailureDestination"]
)
def test_ingest_currents_fails_without_any_one_statement(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sid: str
) -> None:
    policy = without(deployed.documents["ingest_currents"], sid)
    ok, _ = run_currents(deployed, policy, monkeypatch, tmp_path)
    assert not ok
