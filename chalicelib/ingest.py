"""Forwarding SQS messages and Kinesis records (SPEC §4 envelopes) to PutEvents, PutUsers and
PutItems, so that no valid record is lost and none Personalize accepted is sent twice.

Design (it must hold under plain `chalice deploy`, where the SQS mapping has no
ReportBatchItemFailures and Lambda retries or deletes a whole batch):

- Every record is parsed and validated with the HTTP routes' models. A body may hold one envelope
  or a JSON array of envelopes (several users or sessions in one message).
- Events are grouped by (user, session) across the whole batch and packed into PutEvents calls of
  at most 10; users and items into PutUsers/PutItems calls of at most 10. An envelope is never
  split across calls, so each envelope is either wholly accepted or wholly not. When a packed call
  is refused as invalid, its envelopes are sent again one by one to find the bad one.
- A record or envelope that can never succeed (not JSON, wrong envelope, over a limit, refused by
  Personalize as invalid) goes to the dead-letter queue `RECS_DEAD_LETTER_QUEUE` with the reason
  and the original body, and is never retried.
- A failure that may pass (throttling, 5xx, timeout) is retried: on SQS, every message that is
  finished (accepted or dead-lettered) is deleted from the queue first, then the handler raises,
  so Lambda makes only the unfinished messages visible again. With
  `RECS_SQS_BATCH_ITEM_FAILURES=true` (only for a mapping with ReportBatchItemFailures, see
  deploy/report-batch-item-failures.json) it returns `batchItemFailures` instead of raising.
  A message of several envelopes of which some were accepted is finished by sending its
  unfinished envelopes as a new message to the events queue.
- Kinesis has no per-record delete, and a raised error would replay the whole shard batch: so one
  bad record never blocks the shard (it is dead-lettered) and records that failed for a passing
  reason are handed to the events queue, where the SQS handler retries them.
- Events without an `event_id` get one derived from the record id (SQS message id, Kinesis
  sequence number): if a message is ever redelivered anyway (a delete that failed), Personalize
  sees the same event ids and ignores the repeats for training.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from chalicelib import aws
from chalicelib.models import ENVELOPE, EventsEnvelope, ItemsEnvelope, UsersEnvelope, describe
from chalicelib.providers.personalize import arns
from chalicelib.providers.personalize import events as pe
from chalicelib.settings import Settings

log = logging.getLogger("recs.ingest")

MAX_ENVELOPES = 100  # per message: far more than any producer needs, small enough to bound work
Source = Literal["sqs", "kinesis"]
AnyEnvelope = EventsEnvelope | UsersEnvelope | ItemsEnvelope


class RetryLater(Exception):
    """Raised by a handler so that Lambda redelivers the records left unfinished."""


@dataclass(slots=True)
class SourceRecord:
    id: str  # SQS messageId or Kinesis sequence number: stable across redeliveries
    body: bytes
    receipt_handle: str | None = None


@dataclass(slots=True)
class Unit:
    """One envelope of one record, and what became of it."""

    record: int
    index: int
    envelope: AnyEnvelope | None
    raw: Any
    result: pe.CallResult | None = None


@dataclass(slots=True)
class RecordOutcome:
    record: SourceRecord
    units: list[Unit] = field(default_factory=list)
    invalid: str = ""  # the whole record is unusable: why

    @property
    def status(self) -> Literal["invalid", "retry", "done"]:
        if self.invalid:
            return "invalid"
        if all(u.result is not None and u.result.verdict == "retry" for u in self.units):
            return "retry"
        return "done"

    def units_with(self, verdict: pe.Verdict) -> list[Unit]:
        return [u for u in self.units if u.result is not None and u.result.verdict == verdict]


@dataclass(slots=True)
class Stats:
    records: int = 0
    events: int = 0
    users: int = 0
    items: int = 0
    calls: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    requeued: int = 0
    retried: int = 0


# -- parsing ----------------------------------------------------------------------------------


def parse(index: int, record: SourceRecord) -> RecordOutcome:
    outcome = RecordOutcome(record)
    body = record.body
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            raws = json.loads(body)
        except (ValueError, RecursionError):
            outcome.invalid = "the body is not valid JSON"
            return outcome
        if not raws:
            outcome.invalid = "the body is an empty list of envelopes"
        elif len(raws) > MAX_ENVELOPES:
            outcome.invalid = f"{len(raws)} envelopes in one message; the limit is {MAX_ENVELOPES}"
        else:
            outcome.units = [_unit(index, i, raw) for i, raw in enumerate(raws)]
        return outcome
    try:
        envelope = ENVELOPE.validate_json(body)
    except ValidationError as error:
        outcome.invalid = _reason(error)
        return outcome
    outcome.units = [Unit(index, 0, envelope, None)]
    return outcome


def _unit(record: int, index: int, raw: Any) -> Unit:
    unit = Unit(record, index, None, raw)
    try:
        unit.envelope = ENVELOPE.validate_python(raw)
    except ValidationError as error:
        unit.result = pe.CallResult("invalid", _reason(error))
    return unit


def _reason(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return "the body is not valid JSON"
    return f"invalid envelope: {describe(error)}"


# -- forwarding -------------------------------------------------------------------------------


class Forwarder:
    """Packs valid envelopes into as few Personalize calls as the limits allow and records a
    verdict on every one."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.client = client if client is not None else aws.client("personalize-events")
        self.stats = Stats()
        self._record_ids: list[str] = []  # of the batch being forwarded, for stable event ids

    def forward(self, outcomes: Sequence[RecordOutcome]) -> None:
        pending = [u for o in outcomes for u in o.units if u.result is None and u.envelope]
        sessions: dict[tuple[str, str], list[list[Unit]]] = {}
        users: list[Unit] = []
        items: list[Unit] = []
        for unit in pending:
            envelope = unit.envelope
            if isinstance(envelope, EventsEnvelope):
                self.stats.events += len(envelope.events)
                _pack(sessions.setdefault((envelope.user_id, envelope.session), []), unit)
            elif isinstance(envelope, UsersEnvelope):
                self.stats.users += len(envelope.users)
                users.append(unit)
            else:
                self.stats.items += len(envelope.items)
                items.append(unit)
        for (user_id, session_id), bins in sessions.items():
            for group in bins:
                self._settle(group, lambda g, u=user_id, s=session_id: self._events(u, s, g))
        for group in _bins(users):
            self._settle(group, self._users)
        for group in _bins(items):
            self._settle(group, self._items)

    def _settle(self, group: list[Unit], call: Any) -> None:
        result = call(group)
        if result.verdict == "invalid" and len(group) > 1:
            for unit in group:  # find the bad envelope; the others are sent on their own
                self._settle([unit], call)
            return
        for unit in group:
            unit.result = result
            if result.verdict == "accepted":
                self.stats.accepted += _size(unit.envelope)

    def _events(self, user_id: str, session_id: str, group: list[Unit]) -> pe.CallResult:
        if not self.settings.tracking_id:
            return pe.CallResult("retry", "RECS_TRACKING_ID is not set")
        entries = []
        for unit in group:
            assert isinstance(unit.envelope, EventsEnvelope)
            source = self._record_ids[unit.record]
            entries.extend(
                pe.event_entry(event, pe.event_id(source, unit.index, i))
                for i, event in enumerate(unit.envelope.events)
            )
        self.stats.calls += 1
        return pe.put_events(self.client, self.settings.tracking_id, user_id, session_id, entries)

    def _users(self, group: list[Unit]) -> pe.CallResult:
        arn = self._dataset_arn("users")
        if arn is None:
            return pe.CallResult("retry", "RECS_DATASET_GROUP_ARN is not set")
        self.stats.calls += 1
        records = [u for unit in group for u in unit.envelope.users]  # type: ignore[union-attr]
        return pe.put_users(self.client, arn, records)

    def _items(self, group: list[Unit]) -> pe.CallResult:
        arn = self._dataset_arn("items")
        if arn is None:
            return pe.CallResult("retry", "RECS_DATASET_GROUP_ARN is not set")
        self.stats.calls += 1
        records = [i for unit in group for i in unit.envelope.items]  # type: ignore[union-attr]
        result = pe.put_items(self.client, arn, records)
        if result.verdict == "accepted" and self.settings.items_table:
            self._catalogue(records)
        return result

    def _catalogue(self, records: Sequence[Any]) -> None:
        """Items that reach Personalize also decorate responses: upsert them into the item
        table. Best effort: PutItems has accepted them, so a table error must not resend them;
        it is logged, and the next update or import of the item repairs the table."""
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        try:
            items_table.put_items(
                self.settings.items_table, ((i.item_id, i.properties) for i in records)
            )
        except Exception:
            log.exception(
                "item table %s not updated for %d items", self.settings.items_table, len(records)
            )

    def _dataset_arn(self, dataset: arns.DatasetType) -> str | None:
        try:
            return arns.dataset_arn(self.settings.dataset_group_arn, dataset)
        except arns.MissingSettingError:
            return None

    def run(self, records: Sequence[SourceRecord]) -> list[RecordOutcome]:
        self._record_ids = [r.id for r in records]
        outcomes = [parse(i, r) for i, r in enumerate(records)]
        self.stats.records += len(records)
        self.forward(outcomes)
        return outcomes


def _size(envelope: AnyEnvelope | None) -> int:
    if isinstance(envelope, EventsEnvelope):
        return len(envelope.events)
    if isinstance(envelope, UsersEnvelope):
        return len(envelope.users)
    if isinstance(envelope, ItemsEnvelope):
        return len(envelope.items)
    return 0


def _pack(bins: list[list[Unit]], unit: Unit) -> None:
    """Add a whole envelope to the last call of its session if it fits in 10, else start one."""
    size = _size(unit.envelope)
    if bins and sum(_size(u.envelope) for u in bins[-1]) + size <= pe.MAX_PER_CALL:
        bins[-1].append(unit)
    else:
        bins.append([unit])


def _bins(units: Iterable[Unit]) -> list[list[Unit]]:
    bins: list[list[Unit]] = []
    for unit in units:
        _pack(bins, unit)
    return bins


# -- queues -----------------------------------------------------------------------------------

_queue_urls: dict[tuple[str, str], str] = {}


def queue_url(name: str, account: str = "") -> str:
    url = _queue_urls.get((name, account))
    if url is None:
        params = {"QueueName": name} | ({"QueueOwnerAWSAccountId": account} if account else {})
        url = aws.client("sqs").get_queue_url(**params)["QueueUrl"]
        _queue_urls[(name, account)] = url
    return url


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


@dataclass(slots=True)
class Settled:
    """What a handler still owes after forwarding: records finished and records to retry."""

    done: list[RecordOutcome]
    retry: list[RecordOutcome]


def settle(
    outcomes: Sequence[RecordOutcome], source: str, settings: Settings, stats: Stats
) -> Settled:
    """Dead-letter what can never succeed and requeue the unfinished envelopes of partly
    accepted records. A record whose letters could not be sent is retried whole."""
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
        if left and (outcome.status == "done" or source.startswith("kinesis")):
            body = json.dumps([_raw(u) for u in left], ensure_ascii=False, separators=(",", ":"))
            requeue.append((n, body))
    broken: set[int] = set()
    if letters and not settings.dead_letter_queue:
        log.warning(json.dumps({"event": "no_dead_letter_queue", "records": len(letters)}))
    for failed in _send(settings.dead_letter_queue, [b for _, b in letters]):
        broken.add(letters[failed][0])
    for failed in _send(settings.events_queue, [b for _, b in requeue]):
        broken.add(requeue[failed][0])
    stats.dead_lettered += len(letters) - sum(1 for n, _ in letters if n in broken)
    stats.requeued += len(requeue) - sum(1 for n, _ in requeue if n in broken)
    done, retry = [], []
    for n, outcome in enumerate(outcomes):
        unfinished = outcome.status == "retry" and not source.startswith("kinesis")
        (retry if unfinished or n in broken else done).append(outcome)
    stats.retried += len(retry)
    return Settled(done, retry)


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
    settled = settle(outcomes, "sqs", settings, forwarder.stats)
    _log("ingest_sqs", forwarder.stats, started)
    if not settled.retry:
        return {"batchItemFailures": []}
    failures = [{"itemIdentifier": o.record.id} for o in settled.retry]
    if settings.sqs_batch_item_failures:
        return {"batchItemFailures": failures}
    source_arn = raw[0].get("eventSourceARN", "") if raw else ""
    _delete(source_arn, [o.record for o in settled.done])
    raise RetryLater(f"{len(failures)} of {len(records)} messages will be retried")


def _delete(source_arn: str, records: Sequence[SourceRecord]) -> None:
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


def handle_kinesis(event: dict[str, Any], settings: Settings | None = None) -> None:
    """The `ingest_kinesis` Lambda: never blocks the shard on one record; records that failed for
    a passing reason are handed to the events queue (RetryLater only if that is impossible)."""
    import base64  # noqa: PLC0415

    started = time.perf_counter()
    settings = settings or Settings()
    records = []
    for r in event.get("Records", []):
        kinesis = r.get("kinesis", {})
        try:
            data = base64.b64decode(kinesis.get("data", ""), validate=True)
        except ValueError:
            data = b"\x00not base64"
        records.append(SourceRecord(kinesis.get("sequenceNumber", ""), data))
    forwarder = Forwarder(settings)
    outcomes = forwarder.run(records)
    settled = settle(outcomes, "kinesis", settings, forwarder.stats)
    _log("ingest_kinesis", forwarder.stats, started)
    if settled.retry:
        raise RetryLater(f"{len(settled.retry)} Kinesis records could not be handed on")
