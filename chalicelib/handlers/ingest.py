"""The event-source Lambdas `ingest_sqs` and `ingest_kinesis`: SQS messages and Kinesis records
(SPEC §4 envelopes) forwarded to PutEvents, PutUsers and PutItems so that no valid record is lost
and none Personalize accepted is sent twice.

Design (it must hold under plain `chalice deploy`, where the SQS mapping has no
ReportBatchItemFailures and Lambda retries or deletes a whole batch):

- `providers.personalize.ingest.forwarding` validates every record and packs the valid envelopes
  into as few Personalize calls as the limits allow, with a verdict on each: accepted, invalid or
  retry.
- A record or envelope that can never succeed (not JSON, wrong envelope, over a limit, refused by
  Personalize as invalid) goes to the dead-letter queue `RECS_DEAD_LETTER_QUEUE` with the reason
  and the original body, and is never retried (`chalicelib.providers.personalize.ingest.requeue`).
- A failure that may pass (throttling, 5xx, timeout) is retried: on SQS, every message that is
  finished (accepted or dead-lettered) is deleted from the queue first, then the handler raises,
  so Lambda makes only the unfinished messages visible again. With
  `RECS_SQS_BATCH_ITEM_FAILURES=true` (set by `python -m deploy sync`, whose deploy turns
  ReportBatchItemFailures on for the mapping) it returns `batchItemFailures` instead of raising.
  A message of several envelopes of which some were accepted is finished by sending its
  unfinished envelopes as a new message to the events queue.
- Kinesis has no per-record delete, and a raised error would replay the whole shard batch,
  accepted records included: so one bad record never blocks the shard (it is dead-lettered) and
  records that failed for a passing reason are handed to the events queue, where the SQS handler
  retries them, or, when the queue cannot take them, written back to the stream. Only when both
  fail is the batch retried.
- Events without an `event_id` get one derived from the record id (SQS message id, Kinesis
  sequence number) and keep it when they are handed on: if an event is ever sent again (a
  PutEvents that timed out after Personalize took it, a delete that failed), Personalize sees the
  same event id and ignores the repeat for training.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from chalicelib.providers.personalize.ingest import requeue
from chalicelib.providers.personalize.ingest.forwarding import Forwarder, SourceRecord, Stats
from chalicelib.settings import Settings

log = logging.getLogger("recs.ingest")


class RetryLater(Exception):
    """Raised by a handler so that Lambda redelivers the records left unfinished."""


def _log(handler: str, stats: Stats, started: float) -> None:
    line = {"handler": handler, **{k: getattr(stats, k) for k in Stats.__slots__}}
    line["ms"] = round((time.perf_counter() - started) * 1000, 1)
    log.info(json.dumps(line))


# -- handlers ---------------------------------------------------------------------------------


def handle_sqs(event: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The `ingest_sqs` Lambda: raw SQS event in; raises RetryLater if anything must be retried
    (or returns `batchItemFailures` when the mapping reports them)."""
    started = time.perf_counter()
    settings = settings or Settings()
    raw = event.get("Records", [])
    records = [
        SourceRecord(r["messageId"], r["body"].encode("utf-8"), r.get("receiptHandle")) for r in raw
    ]
    forwarder = Forwarder(settings)
    outcomes = forwarder.run(records)
    settled = requeue.settle(outcomes, "sqs", settings, forwarder.stats)
    _log("ingest_sqs", forwarder.stats, started)
    if not settled.retry:
        return {"batchItemFailures": []}
    failures = [{"itemIdentifier": o.record.id} for o in settled.retry]
    if settings.sqs_batch_item_failures:
        return {"batchItemFailures": failures}
    source_arn = raw[0].get("eventSourceARN", "") if raw else ""
    requeue.delete_finished(source_arn, [o.record for o in settled.done])
    raise RetryLater(f"{len(failures)} of {len(records)} messages will be retried")


def handle_kinesis(event: dict[str, Any], settings: Settings | None = None) -> None:
    """The `ingest_kinesis` Lambda: never blocks the shard on one record; records that failed for
    a passing reason are handed to the events queue or written back to the stream (RetryLater
    only if both are impossible)."""
    import base64  # noqa: PLC0415

    started = time.perf_counter()
    settings = settings or Settings()
    records = []
    stream_arn = ""
    for r in event.get("Records", []):
        kinesis = r.get("kinesis", {})
        stream_arn = stream_arn or r.get("eventSourceARN", "")
        try:
            data = base64.b64decode(kinesis.get("data", ""), validate=True)
        except ValueError:
            data = b"\x00not base64"
        sequence = kinesis.get("sequenceNumber", "")
        records.append(
            SourceRecord(sequence, data, partition_key=kinesis.get("partitionKey") or sequence)
        )
    forwarder = Forwarder(settings)
    outcomes = forwarder.run(records)
    settled = requeue.settle(outcomes, "kinesis", settings, forwarder.stats, stream_arn)
    _log("ingest_kinesis", forwarder.stats, started)
    if settled.retry:
        raise RetryLater(f"{len(settled.retry)} Kinesis records could not be handed on")
