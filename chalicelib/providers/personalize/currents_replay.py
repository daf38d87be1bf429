"""`python -m chalicelib replay-currents`: the Currents files `ingest_currents` gave up on, read
from its on-failure destination (RECS_CURRENTS_FAILURES_QUEUE), sent again once the claims'
lease of their failed deliveries is over, and removed from the queue when every record is sent.

Each message is Lambda's invocation record of one S3 event (`chalicelib.currents.failures`).
A message whose lease still runs is left alone (`waiting`, with the time it is due); a due one
is forwarded file by file exactly as the Lambda does (`CurrentsForwarder`: claims, duplicates
skipped, the same event ids), and deleted only when no record is left to retry or held under
another delivery's lease (`failures_queue` reads and deletes; whatever stays is made visible
again before the command ends, so the queue's alarm keeps counting it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.currents.failures import CurrentsReplay, read_invocation_record
from chalicelib.currents.ingest import CurrentsReport
from chalicelib.invocations import iso
from chalicelib.providers.personalize import failures_queue
from chalicelib.settings import Settings

Forward = Callable[[str, str], CurrentsReport]  # (bucket, key) -> the file's report


def replay(
    settings: Settings, forward: Forward, *, dry_run: bool = False, drop: Sequence[str] = ()
) -> list[CurrentsReplay]:
    """Every message of the failures queue, each once (a dry run only reads them; those in
    `drop` are listed and deleted)."""
    return failures_queue.drain(
        settings.currents_failures_queue,
        "RECS_CURRENTS_FAILURES_QUEUE",
        lambda message_id, body, only_list: _replay_one(
            message_id, body, settings, forward, only_list
        ),
        hold_seconds=settings.currents_lease_seconds,
        dry_run=dry_run,
        drop=drop,
    )


def _replay_one(
    message_id: str, body: str, settings: Settings, forward: Forward, dry_run: bool
) -> CurrentsReplay:
    try:
        failed = read_invocation_record(body)
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
