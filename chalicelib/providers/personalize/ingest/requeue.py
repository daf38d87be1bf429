"""Where the records a handler could not finish go: unusable ones to the dead-letter queue with
their reason, unfinished envelopes of partly accepted records back to the events queue (Kinesis:
to the stream when the queue cannot take them), and finished SQS messages deleted at once so
that a handler's error redelivers only the rest.

Envelopes handed on keep the event ids their first delivery gave them (derived from the record
id), so a PutEvents that timed out but was accepted is not trained on twice when they are sent
again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import aws
from chalicelib.providers.personalize.ingest import calls as pe
from chalicelib.providers.personalize.ingest.forwarding import (
    RecordOutcome,
    SourceRecord,
    Stats,
    Unit,
)
from chalicelib.settings import Settings

log = logging.getLogger("recs.ingest")

# -- queues and the stream --------------------------------------------------------------------

_queue_urls: dict[tuple[str, str], str] = {}


def queue_url(name: str, account: str = "") -> str:
    url = _queue_urls.get((name, account))
    if url is None:
        params = {"QueueName": name} | ({"QueueOwnerAWSAccountId": account} if account else {})
        url = aws.client("sqs").get_queue_url(**params)["QueueUrl"]
        _queue_urls[(name, account)] = url
    return url


def forget_queue_urls() -> None:
    """Drop the cached queue URLs (tests, between moto contexts)."""
    _queue_urls.clear()


# SQS's limit for one message and for the sum of a SendMessageBatch's messages.
MAX_SQS_BYTES = 1_048_576


def _batches(bodies: Sequence[str]) -> list[list[int]]:
    """Indexes of `bodies` in SendMessageBatch calls: at most 10 and MAX_SQS_BYTES a call."""
    batches: list[list[int]] = []
    size = MAX_SQS_BYTES + 1
    for n, body in enumerate(bodies):
        length = len(body.encode("utf-8"))
        if size + length > MAX_SQS_BYTES or len(batches[-1]) == 10:
            batches.append([])
            size = 0
        batches[-1].append(n)
        size += length
    return batches


def _send(queue: str, bodies: Sequence[str]) -> list[int]:
    """Send `bodies` to the queue named `queue`; the indexes that failed."""
    failed: list[int] = []
    if not bodies:
        return failed
    if not queue:
        return list(range(len(bodies)))
    try:
        url = queue_url(queue)
        sqs = aws.client("sqs")
        for batch in _batches(bodies):
            entries = [{"Id": str(n), "MessageBody": bodies[n]} for n in batch]
            reply = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            failed += [int(f["Id"]) for f in reply.get("Failed", [])]
    except Exception as error:
        log.error(json.dumps({"event": "send_failed", "queue": queue, "error": str(error)[:300]}))
        return list(range(len(bodies)))
    return failed


def _put_back(stream_arn: str, bodies: Sequence[tuple[str, str]]) -> list[int]:
    """Write (partition key, body) records to the Kinesis stream they came from, 500 a call
    (PutRecords' limit); the indexes that failed."""
    if not bodies:
        return []
    if not stream_arn:
        return list(range(len(bodies)))
    failed: list[int] = []
    try:
        kinesis = aws.client("kinesis")
        for start in range(0, len(bodies), 500):
            chunk = bodies[start : start + 500]
            records = [{"Data": b.encode(), "PartitionKey": k[:256]} for k, b in chunk]
            reply = kinesis.put_records(StreamARN=stream_arn, Records=records)
            failed += [start + i for i, r in enumerate(reply["Records"]) if r.get("ErrorCode")]
    except Exception as error:
        line = {"event": "put_back_failed", "stream": stream_arn, "error": str(error)[:300]}
        log.error(json.dumps(line))
        return list(range(len(bodies)))
    return failed


# -- what is handed on ------------------------------------------------------------------------


def _text(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        import base64  # noqa: PLC0415

        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _dead_letter(source: str, record: SourceRecord, reason: str, envelope: Any = None) -> str:
    letter: dict[str, Any] = {"reason": reason, "source": source, "record_id": record.id}
    if envelope is not None:
        letter["envelope"] = envelope
    else:
        letter |= _text(record.body)
    text = json.dumps(letter, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) <= MAX_SQS_BYTES:
        return text
    # A letter SQS refuses could never be sent, and its message would be retried until SQS's own
    # redrive moved it without a reason: keep the reason, the body's size, digest and head.
    import hashlib  # noqa: PLC0415 - the rare path only

    head = record.body[: MAX_SQS_BYTES // 8]  # even escaped 6 bytes a byte, it fits
    letter = {
        "reason": reason,
        "source": source,
        "record_id": record.id,
        "truncated": {"bytes": len(record.body), "sha256": hashlib.sha256(record.body).hexdigest()},
    } | _text(head)
    return json.dumps(letter, ensure_ascii=False, separators=(",", ":"))


def _raw(unit: Unit) -> Any:
    if unit.raw is not None:
        return unit.raw
    assert unit.envelope is not None
    return unit.envelope.model_dump(mode="json", exclude_none=True)


def with_event_ids(unit: Unit, record_id: str) -> dict[str, Any]:
    """An unfinished envelope as it is sent again: its events carry the ids their first delivery
    gave them, so that Personalize ignores the repeat of an event it did accept (a PutEvents
    that timed out after the service had taken it)."""
    assert unit.envelope is not None
    envelope = unit.envelope.model_dump(mode="json", exclude_none=True)
    if envelope.get("type") == "events":
        for n, event in enumerate(envelope["events"]):
            event.setdefault("event_id", pe.event_id(record_id, unit.index, n))
    return envelope


@dataclass(slots=True)
class Settled:
    """What a handler still owes after forwarding: records finished and records to retry."""

    done: list[RecordOutcome]
    retry: list[RecordOutcome]


def settle(
    outcomes: Sequence[RecordOutcome],
    source: str,
    settings: Settings,
    stats: Stats,
    stream_arn: str = "",
) -> Settled:
    """Dead-letter what can never succeed and requeue the unfinished envelopes of partly
    accepted records (of every Kinesis record with any: a shard has no per-record retry).

    SQS: a record whose letters or requeued envelopes could not be sent is retried whole.
    Kinesis (`stream_arn` given): what the events queue cannot take is written back to the
    stream; only when that fails too is the record retried, and a letter the dead-letter queue
    cannot take is logged in full instead (it can never succeed, and retrying it would send
    the batch's accepted events again)."""
    kinesis = bool(stream_arn) or source.startswith("kinesis")
    letters: list[tuple[int, str]] = []
    requeue: list[tuple[int, str]] = []
    for n, outcome in enumerate(outcomes):
        if outcome.status == "invalid":
            letters.append((n, _dead_letter(source, outcome.record, outcome.invalid)))
            continue
        for unit in outcome.units_with("invalid"):
            reason = unit.result.reason if unit.result else ""
            # A one-envelope record is kept as it came; from a list, only the bad envelope.
            envelope = _raw(unit) if len(outcome.units) > 1 else None
            letters.append((n, _dead_letter(source, outcome.record, reason, envelope)))
        left = outcome.units_with("retry")
        if left and (outcome.status == "done" or kinesis):
            bodies = [with_event_ids(u, outcome.record.id) for u in left]
            requeue.append((n, json.dumps(bodies, ensure_ascii=False, separators=(",", ":"))))
    broken: set[int] = set()
    if letters and not settings.dead_letter_queue:
        log.warning(json.dumps({"event": "no_dead_letter_queue", "records": len(letters)}))
    letters_failed = _send(settings.dead_letter_queue, [b for _, b in letters])
    for failed in letters_failed:
        if kinesis:
            log.error(json.dumps({"event": "dead_letter_not_sent", "letter": letters[failed][1]}))
        else:
            broken.add(letters[failed][0])
    stats.letters_logged += len(letters_failed) if kinesis else 0
    unsent = _send(settings.events_queue, [b for _, b in requeue])
    stats.requeued += len(requeue) - len(unsent)
    if kinesis and unsent:
        back = [(outcomes[requeue[i][0]].record.partition_key, requeue[i][1]) for i in unsent]
        unsent = [unsent[i] for i in _put_back(stream_arn, back)]
        stats.put_back += len(back) - len(unsent)
    for failed in unsent:
        broken.add(requeue[failed][0])
    stats.dead_lettered += len(letters) - len(letters_failed)
    done: list[RecordOutcome] = []
    retry: list[RecordOutcome] = []
    for n, outcome in enumerate(outcomes):
        unfinished = outcome.status == "retry" and not kinesis
        (retry if unfinished or n in broken else done).append(outcome)
    stats.retried += len(retry)
    return Settled(done, retry)


def delete_finished(source_arn: str, records: Sequence[SourceRecord]) -> None:
    """Delete finished messages now, so that the error raised next redelivers only the rest."""
    if not records:
        return
    parts = source_arn.split(":")  # arn:aws:sqs:REGION:ACCOUNT:NAME
    url = queue_url(parts[5], parts[4]) if len(parts) == 6 else queue_url(source_arn)
    sqs = aws.client("sqs")
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        entries = [
            {"Id": str(i), "ReceiptHandle": r.receipt_handle}
            for i, r in enumerate(chunk)
            if r.receipt_handle
        ]
        reply = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        if reply.get("Failed"):
            # Those come back; their events carry stable ids, so Personalize ignores repeats.
            log.warning(json.dumps({"event": "delete_failed", "count": len(reply["Failed"])}))


def send_to(queue: str, bodies: Sequence[str]) -> list[int]:
    """Send `bodies` to the queue named `queue` (the dead-letter queue of `ingest_currents`);
    the indexes that failed."""
    return _send(queue, bodies)
