"""A failures queue drained by a replay command: an S3-triggered function's on-failure
destination (`replay-currents`, `replay-imports`), each message read once, handed to the
command's own replay of one message, deleted only when that replay says `replayed` (or the
operator drops it: a file that will never import, listed as a dry run lists it), and whatever
stays made visible again before the command ends, so that the queue's alarm keeps counting it
and the next run finds it.

A message is hidden from other readers while this run holds it (`hold_seconds`); a run that
dies leaves it to reappear after that long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from chalicelib import aws
from chalicelib.invocations import Replay

R = TypeVar("R", bound=Replay)


def drain(
    queue: str,
    setting: str,
    replay_one: Callable[[str, str, bool], R],
    *,
    hold_seconds: int,
    per_receive: int = 10,
    dry_run: bool = False,
    drop: Collection[str] = (),
) -> list[R]:
    """Every message of `queue` (named by the setting `setting`), each once:
    `replay_one(message id, body, only_list)`, `only_list` on a dry run and for an id in `drop`
    (then listed as `dropped` and deleted)."""
    if not queue:
        raise ValueError(
            f"{setting} is not set: run with the stage's settings "
            "(`python -m deploy sync` writes it into .chalice/config.json)"
        )
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    handled: list[R] = []
    kept: dict[str, str] = {}  # message id -> its latest receipt handle
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=per_receive,
            WaitTimeSeconds=1,
            VisibilityTimeout=hold_seconds,
        ).get("Messages", [])
        seen = {r.message_id for r in handled}
        fresh = [m for m in got if m["MessageId"] not in seen]
        # One this run left in the queue and received again (a long run): only its newer
        # receipt handle can make it visible again.
        kept.update({m["MessageId"]: m["ReceiptHandle"] for m in got if m["MessageId"] in seen})
        if not fresh:
            break
        for message in fresh:
            dropped = message["MessageId"] in drop
            result = replay_one(message["MessageId"], message["Body"], dry_run or dropped)
            result = _dropped(result) if dropped else result
            handled.append(result)
            if result.status in ("replayed", "dropped"):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                kept[message["MessageId"]] = message["ReceiptHandle"]
    _show_again(sqs, url, kept)
    return handled


def _dropped(result: R) -> R:
    why = f" ({result.reason})" if result.reason else ""
    return dataclasses.replace(result, status="dropped", reason=f"dropped by the operator{why}")


def _show_again(sqs: Any, url: str, kept: dict[str, str]) -> None:
    """Messages left in the queue are made visible at once (the alarm counts visible ones)."""
    entries = [
        {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
        for n, handle in enumerate(kept.values())
    ]
    for start in range(0, len(entries), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries[start : start + 10])
