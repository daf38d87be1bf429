"""`python -m chalicelib replay-currents`: a Currents file whose deliveries all failed lands in
`ingest_currents`' failures queue as Lambda's invocation record (moto SQS), and the command sends
it again once the claims' lease is over, each record once, removing the message only then."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.cli import main
from chalicelib.currents.failures import read_invocation_record
from chalicelib.handlers import currents
from chalicelib.seam import runtime
from tests import currents_support as cs
from tests.ingest_support import DLQ, REGION, FakeEvents

BUCKET, TABLE, TRACKING = cs.BUCKET, cs.TABLE, cs.TRACKING
FAILURES = "braze-recs-dev-currents-failures"
NOW = int(time.time())


class Killed(BaseException):
    """Lambda's timeout or a crash: the invocation ends where it stands."""


def _die(*args: Any) -> Any:
    raise Killed


@pytest.fixture
def stage(
    fake_events: FakeEvents, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeEvents, cs.Clock, str]]:
    """The AWS side of a stage (moto), a clock moved by hand for the claims and the command."""
    cs.aws_stage(monkeypatch, DLQ, RECS_CURRENTS_FAILURES_QUEUE=FAILURES)
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=FAILURES)["QueueUrl"]
    clock = cs.Clock()
    monkeypatch.setattr("chalicelib.providers.personalize.loop.time", clock)
    monkeypatch.setattr("chalicelib.providers.personalize.currents_replay.time", clock)
    runtime.reset()
    yield fake_events, clock, url
    runtime.reset()


def _upload(tmp_path: Path, rows: list[dict[str, Any]], name: str = "part-0") -> str:
    path = cs.write(tmp_path, cs.PURCHASE, rows, name)
    key = cs.key(cs.PURCHASE, name)
    boto3.client("s3", region_name=REGION).upload_file(str(path), BUCKET, key)
    return key


def _given_up_within_the_lease(
    fake: FakeEvents, clock: cs.Clock, url: str, event: dict[str, Any]
) -> None:
    """The first delivery dies after claiming; Lambda's two retries (1 and 2 minutes later)
    find the claims still leased and fail; Lambda then keeps the event in the queue."""
    fake.refuse = _die
    with pytest.raises(Killed):
        currents.handle_s3(event)
    fake.refuse = lambda op, body: None
    for wait in (60, 120):
        clock.sleep(wait)
        with pytest.raises(currents.CurrentsRetryError) as failed:
            currents.handle_s3(event)
    cs.lambda_gives_up(url, event, failed.value, clock.now)


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """The command's exit code and JSON; its summary line is kept in `said`."""
    code = main(["replay-currents", *args])
    out, err = capsys.readouterr()
    said[:] = [err]
    return code, json.loads(out)


said: list[str] = []


def _in_queue(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_file_lambda_gave_up_on_is_sent_once_its_lease_is_over_each_record_once(
    stage: tuple[FakeEvents, cs.Clock, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, clock, url = stage
    rows = [cs.purchase(n, f"u{n % 2}", f"i{n}", 1.0, NOW) for n in range(6)]
    key = _upload(tmp_path, rows)
    event = cs.s3_event(BUCKET, key)
    _given_up_within_the_lease(fake, clock, url, event)
    assert fake.accepted == [] and _in_queue(url) == 1

    # Right after the alarm: the lease of the dead delivery still runs, so nothing is sent.
    code, [waiting] = _replay(capsys)
    assert code == 1 and waiting["status"] == "waiting"
    assert waiting["files"] == [f"s3://{BUCKET}/{key}"]
    assert "CurrentsRetryError: 6 Currents records will be sent again" in waiting["reason"]
    due = waiting["due_at"]
    assert said == [
        f"replay-currents: 1 in the failures queue: 1 waiting; run again after {due}, "
        f"when the last lease is over\n  waiting: s3://{BUCKET}/{key}: {waiting['reason']}\n"
    ]
    assert fake.accepted == [] and _in_queue(url) == 1  # still counted by the queue's alarm

    # Lambda's last attempt plus the lease (960 s): every claim of those deliveries has run out.
    clock.sleep(961)
    code, [replayed] = _replay(capsys)
    assert code == 0 and replayed["status"] == "replayed"
    [report] = replayed["reports"]
    assert (report["forwarded"], report["duplicates"], report["pending"]) == (6, 0, 0)
    assert sorted(e["itemId"] for e in fake.accepted) == [f"i{n}" for n in range(6)]
    assert _in_queue(url) == 0
    assert _replay(capsys) == (0, [])
    assert said == ["replay-currents: the failures queue is empty\n"]
    # Currents delivering the same file again later sends nothing twice.
    [again] = currents.handle_s3(event)
    assert again.duplicates == 6 and len(fake.accepted) == 6


def test_a_replay_that_fails_again_keeps_the_message_and_a_later_one_sends_only_the_rest(
    stage: tuple[FakeEvents, cs.Clock, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, clock, url = stage
    rows = [cs.purchase(n, f"u{n % 2}", f"i{n}", 1.0, NOW) for n in range(6)]
    event = cs.s3_event(BUCKET, _upload(tmp_path, rows))
    _given_up_within_the_lease(fake, clock, url, event)
    clock.sleep(961)
    fake.refuse = lambda op, body: "ThrottlingException" if body["userId"] == "u1" else None
    code, [failed] = _replay(capsys)
    assert code == 1 and failed["status"] == "failed"
    assert failed["reason"] == "3 records failed again: run again later"
    assert sorted(e["itemId"] for e in fake.accepted) == ["i0", "i2", "i4"]
    assert _in_queue(url) == 1  # visible again at once, not hidden for the run's hold
    fake.refuse = lambda op, body: None
    code, [replayed] = _replay(capsys)
    assert code == 0 and replayed["status"] == "replayed"
    assert (replayed["reports"][0]["forwarded"], replayed["reports"][0]["duplicates"]) == (3, 3)
    assert sorted(e["itemId"] for e in fake.accepted) == [f"i{n}" for n in range(6)]
    assert _in_queue(url) == 0


def test_a_dry_run_lists_the_files_and_when_they_are_due_and_changes_nothing(
    stage: tuple[FakeEvents, cs.Clock, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, clock, url = stage
    event = cs.s3_event(BUCKET, _upload(tmp_path, [cs.purchase(1, "u1", "i1", 1.0, NOW)]))
    _given_up_within_the_lease(fake, clock, url, event)
    failed_at = clock.now
    code, [listed] = _replay(capsys, "--dry-run")
    assert code == 0 and listed["status"] == "waiting"
    assert listed["due_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failed_at + 960))
    clock.sleep(961)
    code, [listed] = _replay(capsys, "--dry-run")
    assert code == 0 and listed["status"] == "due" and listed["reports"] == []
    assert fake.accepted == [] and _in_queue(url) == 1


def test_a_message_that_cannot_be_replayed_stays_with_the_reason(
    stage: tuple[FakeEvents, cs.Clock, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, _, url = stage
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    gone = cs.s3_event(BUCKET, cs.key(cs.PURCHASE, "deleted"))  # the file was removed since
    cs.lambda_gives_up(url, gone, currents.CurrentsRetryError("1 Currents records"), NOW - 2000)
    code, found = _replay(capsys)
    by_status = {r["status"]: r for r in found}
    assert code == 1 and set(by_status) == {"unreadable", "failed"}
    assert by_status["unreadable"]["reason"].startswith("not a Lambda invocation record")
    assert "NoSuchKey" in by_status["failed"]["reason"]
    assert _in_queue(url) == 2 and fake.accepted == []


def test_the_record_names_each_currents_file_of_the_event_decoded() -> None:
    event = cs.s3_event(BUCKET, "currents/x/event_type=a/b c.avro", "imports/items/x.csv")
    body = json.dumps(cs.invocation_record(event, RuntimeError("boom"), 1_700_000_000.25))
    failed = read_invocation_record(body)
    assert failed.files == ((BUCKET, "currents/x/event_type=a/b c.avro"),)
    assert (failed.failed_at, failed.reason) == (1_700_000_000.25, "RuntimeError: boom")
    assert failed.condition == "RetriesExhausted" and failed.due_at(960) == 1_700_000_960.25


def test_a_stage_supplies_the_settings_and_their_absence_is_said(
    stage: tuple[FakeEvents, cs.Clock, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, clock, url = stage
    event = cs.s3_event(BUCKET, _upload(tmp_path, [cs.purchase(1, "u1", "i1", 1.0, NOW)]))
    _given_up_within_the_lease(fake, clock, url, event)
    clock.sleep(961)
    # The stage as `python -m deploy sync` leaves it; the environment has none of it.
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    settings = {
        "RECS_PROVIDER": "personalize",
        "RECS_TRACKING_ID": TRACKING,
        "RECS_SERVED_TABLE": TABLE,
        "RECS_DEAD_LETTER_QUEUE": DLQ,
        "RECS_CURRENTS_FAILURES_QUEUE": FAILURES,
    }
    unsynced = {"RECS_PROVIDER": "personalize", "RECS_CURRENTS_FAILURES_QUEUE": ""}
    stages = {
        "dev": {"environment_variables": settings},
        "prod": {"environment_variables": unsynced},
    }
    (project / ".chalice" / "config.json").write_text(json.dumps({"stages": stages}))
    monkeypatch.setattr("chalicelib.cli.replay.PROJECT_ROOT", project)
    for key in settings:
        monkeypatch.delenv(key)
    runtime.reset()
    assert main(["replay-currents"]) == 2  # the local provider keeps no such queue
    assert "the local provider keeps no failures queue" in capsys.readouterr().err
    assert main(["replay-currents", "--stage", "prod"]) == 2
    assert "RECS_CURRENTS_FAILURES_QUEUE is not set" in capsys.readouterr().err
    assert main(["replay-currents", "--stage", "qa"]) == 2
    assert "no stage 'qa' in .chalice/config.json (dev, prod)" in capsys.readouterr().err
    code, [replayed] = _replay(capsys, "--stage", "dev")
    assert code == 0 and replayed["status"] == "replayed"
    assert [e["itemId"] for e in fake.accepted] == ["i1"]


def test_the_operator_drops_a_message_and_nothing_of_it_is_sent(
    stage: tuple[FakeEvents, cs.Clock, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--drop MESSAGE_ID`: out of the queue, listed as a dry run lists it, nothing forwarded."""
    fake, clock, url = stage
    key = _upload(tmp_path, [cs.purchase(n, "u1", f"i{n}", 1.0, NOW) for n in range(3)])
    _given_up_within_the_lease(fake, clock, url, cs.s3_event(BUCKET, key))
    code, [waiting] = _replay(capsys)
    clock.sleep(961)  # due: without --drop it would be sent now
    code, [dropped] = _replay(capsys, "--drop", waiting["message_id"])
    assert code == 0 and dropped["status"] == "dropped" and dropped["reports"] == []
    assert dropped["reason"].startswith("dropped by the operator (CurrentsRetryError: ")
    assert fake.accepted == [] and _in_queue(url) == 0
