"""`ingest_currents` on AWS: Currents Avro files in (moto) S3 to PutEvents (a fake checked
against the service model), each record once through the served table's conditional writes,
what can never succeed dead-lettered, what may pass retried with the file's next delivery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.config import load_config
from chalicelib.handlers import currents
from chalicelib.providers.personalize.currents import CurrentsForwarder
from chalicelib.settings import Settings
from chalicelib.vocabulary import Engagement, ServedList
from tests import currents_support as cs
from tests.attribution_support import generated, generated_totals, reference_attribute
from tests.ingest_support import DLQ, REGION, FakeEvents

BUCKET = cs.BUCKET
NOW = int(time.time())


@pytest.fixture
def stage(
    fake_events: FakeEvents, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeEvents]:
    cs.aws_stage(monkeypatch, DLQ)
    yield fake_events


def _upload(
    tmp_path: Path, event_type: str, rows: list[dict[str, Any]], name: str = "part-0"
) -> str:
    path = cs.write(tmp_path, event_type, rows, name)
    key = cs.key(event_type, name)
    boto3.client("s3", region_name=REGION).upload_file(str(path), BUCKET, key)
    return key


def _letters() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in out]


def test_purchases_become_put_events_for_the_shops_user_once(
    stage: FakeEvents, tmp_path: Path
) -> None:
    rows = [cs.purchase(n, f"u{n % 3}", f"i{n}", 10.0 + n, NOW - 60 + n) for n in range(25)]
    rows.append(cs.purchase(99, None, "i1", 1.0, NOW))  # no external id
    key = _upload(tmp_path, cs.PURCHASE, rows)
    [report] = currents.handle_s3(cs.s3_event(BUCKET, key))
    assert (report.records, report.forwarded, report.skipped["no_external_id"]) == (26, 25, 1)
    assert {e["userId"] for e in stage.accepted} == {"u0", "u1", "u2"}
    assert stage.calls["events"] == 3 + 0  # one call per user: 9, 8 and 8 events, ten at most
    first = next(e for e in stage.accepted if e["itemId"] == "i0")
    assert first["eventType"] == "purchase" and first["eventValue"] == 10.0
    assert first["sentAt"] == NOW - 60 and first["sessionId"] == "braze-u0"
    assert len({e["eventId"] for e in stage.accepted}) == 25
    # The same file delivered again (at-least-once), and the same records in another file.
    again = _upload(tmp_path, cs.PURCHASE, rows[:5], name="part-1")
    reports = currents.handle_s3(cs.s3_event(BUCKET, key, again))
    assert [r.duplicates for r in reports] == [25, 5]
    assert [r.forwarded for r in reports] == [0, 0]
    assert len(stage.accepted) == 25 and stage.calls["events"] == 3


def test_a_throttled_call_is_retried_with_the_next_delivery_only(
    stage: FakeEvents, tmp_path: Path
) -> None:
    rows = [cs.purchase(n, f"u{n % 2}", f"i{n}", 1.0, NOW) for n in range(6)]
    key = _upload(tmp_path, cs.PURCHASE, rows)
    stage.refuse = lambda op, body: "ThrottlingException" if body.get("userId") == "u1" else None
    with pytest.raises(currents.CurrentsRetryError):
        currents.handle_s3(cs.s3_event(BUCKET, key))
    assert {e["userId"] for e in stage.accepted} == {"u0"}
    stage.refuse = lambda op, body: None
    [report] = currents.handle_s3(cs.s3_event(BUCKET, key))
    assert (report.forwarded, report.duplicates) == (3, 3)
    assert sorted(e["itemId"] for e in stage.accepted) == [f"i{n}" for n in range(6)]


def test_an_event_personalize_refuses_is_dead_lettered_the_rest_go_on(
    stage: FakeEvents, tmp_path: Path
) -> None:
    rows = [cs.purchase(n, "u1", f"i{n}", 1.0, NOW) for n in range(4)]
    key = _upload(tmp_path, cs.PURCHASE, rows)

    def refuse(op: str, body: dict[str, Any]) -> Any:
        if any(e["itemId"] == "i2" for e in body["eventList"]):
            return ("InvalidInputException", "item i2 is not valid")
        return None

    stage.refuse = refuse
    [report] = currents.handle_s3(cs.s3_event(BUCKET, key))
    assert (report.forwarded, report.dead_lettered, report.retry) == (3, 1, 0)
    [letter] = _letters()
    assert letter["record_id"] == "purchase-2" and "i2 is not valid" in letter["reason"]
    [again] = currents.handle_s3(cs.s3_event(BUCKET, key))  # never retried
    assert again.duplicates == 4 and again.dead_lettered == 0


def test_email_click_and_content_card_click_on_aws(
    stage: FakeEvents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    config = load_config(settings.config)
    config = config.model_copy(
        update={
            "currents": config.currents.model_copy(
                update={"content_card_click_event_type": "card-click"}
            )
        }
    )
    forwarder = CurrentsForwarder(settings, config)
    forwarder.loop.record_served(
        ServedList(
            "RID-9",
            "u3",
            ["a", "b", "c"],
            "recommendations",
            "personalized",
            NOW - 30,
            "sv-1",
            "cmp-1",
        )
    )
    click_key = _upload(
        tmp_path,
        cs.EMAIL_CLICK,
        [cs.email_click(1, "u3", "https://shop.example/p/b?rid=RID-9", NOW)],
    )
    card_key = _upload(
        tmp_path, cs.CARD_CLICK, [cs.card(1, "u3", "cmp-1", NOW), cs.card(2, "u3", "cmp-2", NOW)]
    )
    click = forwarder.forward_object(BUCKET, click_key)
    card = forwarder.forward_object(BUCKET, card_key)
    assert click.forwarded == 1 and card.forwarded == 1 and card.skipped["not_served"] == 1
    by_type = {e["eventType"]: e for e in stage.accepted}
    assert by_type["click"]["itemId"] == "b" and by_type["click"]["recommendationId"] == "RID-9"
    assert by_type["card-click"]["recommendationId"] == "RID-9"
    assert by_type["card-click"]["impression"] == ["a", "b", "c"]
    assert "itemId" not in by_type["card-click"]
    served, engaged = forwarder.loop.history(0)
    assert [s.recommendation_id for s in served] == ["RID-9"]
    assert sorted((e.kind, e.recommendation_id) for e in engaged) == [
        ("click", "RID-9"),
        ("click", "RID-9"),
    ]


def test_the_command_forwards_local_files_and_s3_objects_on_aws(
    stage: FakeEvents, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.cli import main
    from chalicelib.seam import runtime

    runtime.reset()
    local = cs.write(tmp_path / "disk", cs.PURCHASE, [cs.purchase(1, "u1", "i1", 3.0, NOW)])
    key = _upload(tmp_path / "s3", cs.PURCHASE, [cs.purchase(2, "u2", "i2", 4.0, NOW)])
    forwarded = []
    for source in (str(local), f"s3://{BUCKET}/{key}"):
        assert main(["import", "currents", source]) == 0
        [report] = json.loads(capsys.readouterr().out)
        forwarded.append(report["forwarded"])
    assert forwarded == [1, 1]
    assert sorted(e["itemId"] for e in stage.accepted) == ["i1", "i2"]
    assert main(["import", "currents", "s3://no-key-here"]) == 2
    runtime.reset()


class Killed(BaseException):
    """Lambda's timeout or a crash: the invocation ends where it stands, nothing handles it."""


def _die(*args: Any) -> Any:
    raise Killed


def test_a_delivery_that_dies_after_claiming_is_sent_once_by_one_after_the_lease(
    stage: FakeEvents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = cs.Clock()
    monkeypatch.setattr("chalicelib.providers.personalize.loop.time", clock)
    rows = [cs.purchase(n, f"u{n % 2}", f"i{n}", 1.0, NOW) for n in range(6)]
    event = cs.s3_event(BUCKET, _upload(tmp_path, cs.PURCHASE, rows))
    stage.refuse = _die  # killed in PutEvents, after the claims, before any event is taken
    with pytest.raises(Killed):
        currents.handle_s3(event)
    stage.refuse = lambda op, body: None
    # Delivered again within the lease: neither sent (its owner may be sending) nor dropped.
    clock.sleep(900)
    with pytest.raises(currents.CurrentsRetryError, match=r"^6 Currents"):
        currents.handle_s3(event)
    assert stage.accepted == []
    clock.sleep(61)  # past RECS_CURRENTS_LEASE_SECONDS (960)
    [report] = currents.handle_s3(event)
    assert (report.forwarded, report.pending, report.duplicates) == (6, 0, 0)
    assert sorted(e["itemId"] for e in stage.accepted) == [f"i{n}" for n in range(6)]
    [again] = currents.handle_s3(event)
    assert (again.forwarded, again.duplicates) == (0, 6) and len(stage.accepted) == 6


def test_a_death_after_the_send_before_the_mark_repeats_the_same_event_ids(
    stage: FakeEvents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.providers.personalize.loop import DynamoLoop

    clock = cs.Clock()
    monkeypatch.setattr("chalicelib.providers.personalize.loop.time", clock)
    rows = [cs.purchase(n, "u1", f"i{n}", 1.0, NOW) for n in range(3)]
    event = cs.s3_event(BUCKET, _upload(tmp_path, cs.PURCHASE, rows))
    done = DynamoLoop.done
    monkeypatch.setattr(DynamoLoop, "done", _die)
    with pytest.raises(Killed):
        currents.handle_s3(event)
    monkeypatch.setattr(DynamoLoop, "done", done)
    clock.sleep(961)
    [report] = currents.handle_s3(event)
    assert report.forwarded == 3
    # Sent twice in that window, under one event id each: Personalize's duplicate is traceable.
    ids = [e["eventId"] for e in stage.accepted]
    assert len(ids) == 6 and len(set(ids)) == 3
    [again] = currents.handle_s3(event)
    assert again.duplicates == 3 and len(stage.accepted) == 6


def test_a_redelivery_while_the_first_delivery_sends_never_sends_twice(
    stage: FakeEvents, tmp_path: Path
) -> None:
    rows = [cs.purchase(n, "u1", f"i{n}", 1.0, NOW) for n in range(4)]  # one PutEvents call
    event = cs.s3_event(BUCKET, _upload(tmp_path, cs.PURCHASE, rows))
    overlapped = []

    def redeliver(op: str, body: dict[str, Any]) -> None:
        if not overlapped:  # Currents' second delivery arrives while the first one sends
            overlapped.append(True)
            with pytest.raises(currents.CurrentsRetryError, match=r"^4 Currents"):
                currents.handle_s3(event)
            assert stage.accepted == []

    stage.refuse = redeliver
    [first] = currents.handle_s3(event)
    assert overlapped and first.forwarded == 4
    [retried] = currents.handle_s3(event)  # Lambda's retry of the second delivery
    assert (retried.forwarded, retried.duplicates, retried.pending) == (0, 4, 0)
    assert sorted(e["itemId"] for e in stage.accepted) == [f"i{n}" for n in range(4)]


def test_the_claims_lease_outlasts_the_functions_timeout() -> None:
    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    timeouts = [
        stage["lambda_functions"]["ingest_currents"]["lambda_timeout"]
        for stage in config["stages"].values()
        if "ingest_currents" in stage.get("lambda_functions", {})
    ]
    assert timeouts and Settings().currents_lease_seconds > max(timeouts)


def test_attribution_on_aws_streams_the_table_and_sums_what_the_python_pass_summed(
    stage: FakeEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.providers.personalize.loop import DynamoLoop

    monkeypatch.setattr("chalicelib.attribution.SCRATCH_BATCH", 50)  # many batches of a scan
    loop = DynamoLoop(Settings())
    engaged: list[Engagement] = []
    for record in generated(400, start=NOW - 2 * 86_400):
        if isinstance(record, ServedList):
            loop.record_served(record)
        else:
            engaged.append(record)
    loop.record_engagements(engaged)
    got = loop.attribution(0, 24).as_dict()
    assert got == reference_attribute(*loop.history(0), 24).as_dict()
    totals = generated_totals(400)
    # The table keeps no arrival order: records of one millisecond come in their ids' order, so
    # the purchase that came just before its click in the same second counts here (as it did).
    totals["purchases"] += 400 // 200
    assert {k: got["total"][k] for k in totals} == totals
