"""One Currents file through the mapping and a provider's sender, once per record.

Records are taken in chunks (memory flat in the file's size). Each chunk's meaningful records
are claimed by their Currents id first, as a lease (pending): a record whose claim is done (its
file delivered twice, or the same event in two files) is a duplicate and is not sent again. The
sender gives each record a verdict: accepted (its engagement is kept) or invalid (dead-lettered
by the sender: it can never succeed) mark the claim done; retry releases it, so that the file's
next delivery sends it. A sender that dies between the claim and the mark leaves the claim
pending: once its lease runs out, a redelivery takes it again and sends it under the same
Personalize event id. A claim still within another sender's lease is `held` and counted as
pending: the file must be delivered again (see `CurrentsReport.pending`). Records with no
external id, of unmapped types or bad are counted by reason in the report, never fatal.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, Protocol

from chalicelib.currents.avro import NotAvroError
from chalicelib.currents.mapping import Mapped, Mapper, Skip
from chalicelib.vocabulary import ClaimOutcome, Engagement, Progress

log = logging.getLogger("recs.currents")
CHUNK = 1000
MAX_ERRORS = 20

Verdict = Literal["accepted", "invalid", "retry"]
# record id -> (verdict, reason) for every record handed to it.
Sender = Callable[[Sequence[Mapped]], Mapping[str, tuple[Verdict, str]]]


class Claims(Protocol):
    """What ingestion needs of the loop (`chalicelib.seam.roles.Loop` fills it)."""

    def claim(self, record_ids: Sequence[str]) -> dict[str, ClaimOutcome]: ...

    def done(self, record_ids: Sequence[str]) -> None: ...

    def release(self, record_ids: Sequence[str]) -> None: ...

    def record_engagements(self, engagements: Sequence[Engagement]) -> int: ...


@dataclass
class CurrentsReport:
    source: str
    event_type: str | None
    records: int = 0
    forwarded: int = 0  # accepted by PutEvents (or the local store)
    kept: int = 0  # engagements kept for attribution (forwarded ones included)
    duplicates: int = 0  # records forwarded before
    dead_lettered: int = 0
    retry: int = 0  # failed for a passing reason: sent again on the next delivery
    # Claimed by another delivery whose lease still runs: that one may be sending them, or may
    # have died. Skipping them as duplicates could lose them, so the file counts as unfinished
    # (the Lambda raises, and Lambda delivers it again; the command exits 1): a later delivery
    # finds them done (skipped) or their lease over (taken and sent).
    pending: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "skipped"}
        return out | {"skipped": dict(self.skipped)}


def ingest(
    records: Iterable[Mapping[str, Any]],
    report: CurrentsReport,
    mapper: Mapper,
    claims: Claims,
    send: Sender,
    *,
    progress: Progress | None = None,
) -> CurrentsReport:
    iterator = iter(records)
    while chunk := _next_chunk(iterator, report):
        mapped: dict[str, Mapped] = {}
        for n, record in enumerate(chunk, start=report.records + 1):
            try:
                meaning = mapper.map(report.event_type, record)
            except Skip as skip:
                report.skipped[skip.reason] += 1
                if skip.reason == "bad_record":
                    report.error(f"record {n}: {skip.detail}")
                continue
            if meaning.record_id in mapped:  # the same record twice in one file
                report.duplicates += 1
                continue
            mapped[meaning.record_id] = meaning
        report.records += len(chunk)
        _settle(list(mapped.values()), report, claims, send)
        if progress is not None:
            progress("currents", report.records, None)
    return report


def _next_chunk(iterator: Iterator[Mapping[str, Any]], report: CurrentsReport) -> list[Any]:
    """The next records; a file that is not Avro, or breaks off, ends with what it had (a
    file read again can never mend: it is reported, not retried)."""
    chunk: list[Any] = []
    try:
        chunk.extend(islice(iterator, CHUNK))
    except NotAvroError as exc:
        report.skipped["bad_file"] += 1
        report.error(str(exc))
    return chunk


def _settle(mapped: list[Mapped], report: CurrentsReport, claims: Claims, send: Sender) -> None:
    if not mapped:
        return
    outcomes = claims.claim([m.record_id for m in mapped])
    fresh = [m for m in mapped if outcomes.get(m.record_id) == "taken"]
    held = sum(1 for m in mapped if outcomes.get(m.record_id) == "held")
    report.pending += held
    report.duplicates += len(mapped) - len(fresh) - held
    # A crash inside `send` leaves these claims pending: their lease makes them sendable again.
    verdicts = send([m for m in fresh if m.entry is not None])
    kept: list[Engagement] = []
    settled: list[str] = []
    released: list[str] = []
    for meaning in fresh:
        verdict, reason = ("accepted", "")
        if meaning.entry is not None:
            verdict, reason = verdicts.get(meaning.record_id, ("retry", "no verdict"))
            report.forwarded += verdict == "accepted"
        if verdict == "accepted":
            kept.append(meaning.engagement)
            settled.append(meaning.record_id)
        elif verdict == "invalid":
            report.dead_lettered += 1
            report.error(f"record {meaning.record_id}: {reason}")
            settled.append(meaning.record_id)
        else:
            report.retry += 1
            released.append(meaning.record_id)
    if settled:
        claims.done(settled)
    if released:
        claims.release(released)
    report.kept += claims.record_engagements(kept) if kept else 0
