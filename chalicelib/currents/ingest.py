"""One Currents file through the mapping and a provider's sender, once per record.

Records are taken in chunks (memory flat in the file's size). Each chunk's meaningful records
are claimed by their Currents id first: a record claimed before (its file delivered twice, or
the same event in two files) is a duplicate and is not sent again. The sender gives each
record a verdict: accepted (its engagement is kept), invalid (dead-lettered by the sender, its
claim kept: it can never succeed), or retry (its claim released, so that the file's next
delivery sends it). Records with no external id, of unmapped types or bad are counted by
reason in the report, never fatal.
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
from chalicelib.vocabulary import Engagement, Progress

log = logging.getLogger("recs.currents")
CHUNK = 1000
MAX_ERRORS = 20

Verdict = Literal["accepted", "invalid", "retry"]
# record id -> (verdict, reason) for every record handed to it.
Sender = Callable[[Sequence[Mapped]], Mapping[str, tuple[Verdict, str]]]


class Claims(Protocol):
    """What ingestion needs of the loop (`chalicelib.seam.roles.Loop` fills it)."""

    def claim(self, record_ids: Sequence[str]) -> set[str]: ...

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
    taken = claims.claim([m.record_id for m in mapped])
    report.duplicates += len(mapped) - len(taken)
    fresh = [m for m in mapped if m.record_id in taken]
    verdicts = send([m for m in fresh if m.entry is not None])
    kept: list[Engagement] = []
    released: list[str] = []
    for meaning in fresh:
        if meaning.entry is None:
            kept.append(meaning.engagement)
            continue
        verdict, reason = verdicts.get(meaning.record_id, ("retry", "no verdict"))
        if verdict == "accepted":
            report.forwarded += 1
            kept.append(meaning.engagement)
        elif verdict == "invalid":
            report.dead_lettered += 1
            report.error(f"record {meaning.record_id}: {reason}")
        else:
            report.retry += 1
            released.append(meaning.record_id)
    if released:
        claims.release(released)
    report.kept += claims.record_engagements(kept) if kept else 0
