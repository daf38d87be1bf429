"""`python -m chalicelib replay-currents`: the Currents files `ingest_currents` gave up on, read
from its on-failure destination (RECS_CURRENTS_FAILURES_QUEUE), sent again once the claims'
lease of their failed deliveries is over, and removed from the queue when every record is sent.

Each message is Lambda's invocation record of one S3 event (`chalicelib.currents.failures`).
A message whose lease still runs is left alone (`waiting`, with the time it is due); a due one
is forwarded file by file exactly as the Lambda does (`CurrentsForwarder`: claims, duplicates
skipped, the same event ids), and deleted only when no record is left to retry or held under
another delivery's lease. Whatever stays is made visible again before the command ends, so the
queue's alarm keeps counting it and the next run finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.currents.failures import CurrentsReplay, iso, read_invocation_record
from chalicelib.currents.ingest import CurrentsReport
from chalicelib.settings import Settings

Forward = Callable[[str, str], CurrentsReport]  # (bucket, key) -> the file's report


def replay(settings: Settings, forward: Forward, *, dry_run: bool = False) -> list[CurrentsReplay]:
    """Every message of the failures queue, each once (a dry run only reads them)."""
    queue = settings.currents_failures_queue
    if not queue:
        raise ValueError(
            "RECS_CURRENTS_FAILURES_QUEUE is not set: run with the stage's settings "
            "(`python -m deploy sync` writes it into .chalice/config.json)"
        )
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    handled: list[CurrentsReplay] = []
    kept: dict[str, str] = {}  # message id -> its latest receipt handle
    while True:
        # Hidden from other readers while this run holds it; a run that dies leaves it to
        # reappear after this long.
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=settings.currents_lease_seconds,
        ).get("Messages", [])
        seen = {r.message_id for r in handled}
        fresh = [m for m in got if m["MessageId"] not in seen]
        # One this run left in the queue and received again (a long run): only its newer
        # receipt handle can make it visible again.
        kept.update({m["MessageId"]: m["ReceiptHandle"] for m in got if m["MessageId"] in seen})
        if not fresh:
            break
        for message in fresh:
            result = _replay_one(message, settings, forward, dry_run)
            handled.append(result)
            if result.status == "replayed":
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                kept[message["MessageId"]] = message["ReceiptHandle"]
    _show_again(sqs, url, kept)
    return handled


def _replay_one(
    message: dict[str, Any], settings: Settings, forward: Forward, dry_run: bool
) -> CurrentsReplay:
    message_id = message["MessageId"]
    try:
        failed = read_invocation_record(message["Body"])
    except ValueError as exc:
        return CurrentsReplay(message_id, "unreadable", reason=str(exc))
    due = failed.due_at(settings.currents_lease_seconds)
    result = CurrentsReplay(
        message_id,
        "waiting" if time.time() < due else "due",
        files=[f"s3://{bucket}/{key}" for bucket, key in failed.files],
        failed_at=iso(failed.failed_at),
        due_at=iso(due),
        reason=failed.reason,
    )
    if result.status == "waiting" or dry_run:
        return result
    try:
        for bucket, key in failed.files:
            result.reports.append(forward(bucket, key))
    except (ClientError, BotoCoreError) as exc:  # a deleted file, a missing permission
        result.status, result.reason = "failed", f"s3://{bucket}/{key}: {exc}"
        return result
    unsent = sum(r.retry for r in result.reports)
    held = sum(r.pending for r in result.reports)
    if not unsent and not held:
        result.status = "replayed"
        return result
    why = [f"{unsent} records failed again"] if unsent else []
    why += [f"{held} records are held under another delivery's lease"] if held else []
    result.status, result.reason = "failed", f"{' and '.join(why)}: run again later"
    return result


def _show_again(sqs: Any, url: str, kept: dict[str, str]) -> None:
    """Messages left in the queue are made visible at once (the alarm counts visible ones)."""
    entries = [
        {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
        for n, handle in enumerate(kept.values())
    ]
    for start in range(0, len(entries), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries[start : start + 10])
