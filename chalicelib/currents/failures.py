"""A Currents file `ingest_currents` gave up on, as Lambda keeps it in the function's on-failure
destination (RECS_CURRENTS_FAILURES_QUEUE): Lambda's invocation record (`chalicelib.invocations`),
read back into the files to send again and the time from which that is safe, and what a replay
of it did.

Lambda retries an asynchronous S3 event twice within about three minutes, while a delivery that
died after claiming its records holds them for the claims' lease (RECS_CURRENTS_LEASE_SECONDS,
960 s): such a file fails every retry with `pending` records and lands here. The record's
`timestamp` is Lambda's last attempt, which came after every claim those deliveries made, so
once that time plus the lease has passed, each claim they left pending has run out and a replay
sends those records, under the same event ids (claims already done are skipped as duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.invocations import Replay, read_record

if TYPE_CHECKING:
    from chalicelib.currents.ingest import CurrentsReport


@dataclass(frozen=True)
class FailedDelivery:
    files: tuple[tuple[str, str], ...]  # (bucket, key) of each Currents file of the event
    failed_at: float  # epoch seconds of Lambda's last attempt
    reason: str  # the function's last error, as Lambda recorded it
    condition: str  # RetriesExhausted, or EventAgeExceeded

    def due_at(self, lease_seconds: float) -> float:
        """From when every claim the failed deliveries left pending has run out."""
        return self.failed_at + lease_seconds


def read_invocation_record(body: str) -> FailedDelivery:
    """The Currents files of an invocation record; ValueError for a body that is not one."""
    # .avro keys, as `ingest_currents` reads them
    given_up = read_record(body, lambda key: key.endswith(".avro"), ".avro file")
    return FailedDelivery(
        tuple((f.bucket, f.key) for f in given_up.files),
        given_up.failed_at,
        given_up.reason,
        given_up.condition,
    )


@dataclass
class CurrentsReplay(Replay):
    """What `replay-currents` did with one message of the failures queue."""

    due_at: str = ""  # from when a replay is safe: the claims' lease is over
    reports: list[CurrentsReport] = field(default_factory=list)
