"""Forwarding records to Personalize: each SQS message or Kinesis record (SPEC §4 envelopes) is
parsed and validated with the HTTP routes' models, and the valid envelopes are packed into as few
PutEvents, PutUsers and PutItems calls as Personalize's limits allow, each envelope getting a
verdict: accepted, invalid (never retried) or retry (a failure that may pass).

A body may hold one envelope or a JSON array of envelopes. Events are grouped by (user, session)
across the whole batch, at most 10 to a call; users and items 10 to a call. An envelope is never
split across calls, so each is wholly accepted or wholly not; when a packed call is refused as
invalid, its envelopes are sent again one by one to find the bad one. What becomes of the
unfinished ones is `requeue`'s job; the Lambda handlers are in `chalicelib.handlers.ingest`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from chalicelib import aws
from chalicelib.payloads import ENVELOPE, EventsEnvelope, ItemsEnvelope, UsersEnvelope, describe
from chalicelib.providers.personalize import arns
from chalicelib.providers.personalize.ingest import calls as pe
from chalicelib.settings import Settings
from chalicelib.vocabulary import Dataset

log = logging.getLogger("recs.ingest")

MAX_ENVELOPES = 100  # per message: far more than any producer needs, small enough to bound work
AnyEnvelope = EventsEnvelope | UsersEnvelope | ItemsEnvelope


@dataclass(slots=True)
class SourceRecord:
    id: str  # SQS messageId or Kinesis sequence number: stable across redeliveries
    body: bytes
    receipt_handle: str | None = None
    partition_key: str = ""  # Kinesis: where a record written back to the stream goes


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
    put_back: int = 0  # Kinesis records written back to the stream (the events queue was out)
    letters_logged: int = 0  # Kinesis letters the dead-letter queue could not take
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
        self._names: dict[str, frozenset[str]] = {}

    def names(self, dataset: Dataset) -> frozenset[str]:
        """The property names the dataset's schema (`recs.toml`) lets through, read on first
        need: a batch of plain events never loads the configuration."""
        found = self._names.get(dataset)
        if found is None:
            from chalicelib.config import load_config  # noqa: PLC0415 - first need only

            fields = load_config(self.settings.config).schemas.get(dataset, {})
            members = pe.EVENT_COLUMNS if dataset == "interactions" else pe.ID_COLUMNS
            found = self._names[dataset] = pe.property_names(fields, members)
        return found

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
            elif isinstance(envelope, ItemsEnvelope):
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
        entries: list[dict[str, Any]] = []
        for unit in group:
            assert isinstance(unit.envelope, EventsEnvelope)
            source = self._record_ids[unit.record]
            entries.extend(
                pe.event_entry(
                    event,
                    pe.event_id(source, unit.index, i),
                    self.names("interactions") if event.properties else None,
                )
                for i, event in enumerate(unit.envelope.events)
            )
        self.stats.calls += 1
        return pe.put_events(self.client, self.settings.tracking_id, user_id, session_id, entries)

    def _users(self, group: list[Unit]) -> pe.CallResult:
        arn = self._dataset_arn("users")
        if arn is None:
            return pe.CallResult("retry", "RECS_DATASET_GROUP_ARN is not set")
        self.stats.calls += 1
        records = [
            u
            for unit in group
            if isinstance(unit.envelope, UsersEnvelope)
            for u in unit.envelope.users
        ]
        return pe.put_users(self.client, arn, records, self.names("users"))

    def _items(self, group: list[Unit]) -> pe.CallResult:
        arn = self._dataset_arn("items")
        if arn is None:
            return pe.CallResult("retry", "RECS_DATASET_GROUP_ARN is not set")
        self.stats.calls += 1
        records = [
            i
            for unit in group
            if isinstance(unit.envelope, ItemsEnvelope)
            for i in unit.envelope.items
        ]
        result = pe.put_items(self.client, arn, records, self.names("items"))
        if result.verdict == "accepted" and self.settings.items_table:
            self._catalogue(records)
        return result

    def _catalogue(self, records: Sequence[Any]) -> None:
        """Items that reach Personalize also decorate responses: write them into the item table,
        whole, as PutItems replaced them on Personalize. Best effort: PutItems has accepted
        them, so a table error must not resend them; it is logged, and the next update or
        import of the item repairs the table."""
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        try:
            items_table.put_items(
                self.settings.items_table, ((i.item_id, i.properties) for i in records)
            )
        except Exception:
            log.exception(
                "item table %s not updated for %d items", self.settings.items_table, len(records)
            )

    def _dataset_arn(self, dataset: Dataset) -> str | None:
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
