"""A Currents file `ingest_currents` gave up on, as Lambda keeps it in the function's on-failure
destination (RECS_CURRENTS_FAILURES_QUEUE): Lambda's invocation record, read back into the files
to send again and the time from which that is safe, and what a replay of it did.

Lambda retries an asynchronous S3 event twice within about three minutes, while a delivery that
died after claiming its records holds them for the claims' lease (RECS_CURRENTS_LEASE_SECONDS,
960 s): such a file fails every retry with `pending` records and lands here. The record's
`timestamp` is Lambda's last attempt, which came after every claim those deliveries made, so
once that time plus the lease has passed, each claim they left pending has run out and a replay
sends those records, under the same event ids (claims already done are skipped as duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from chalicelib.currents.ingest import CurrentsReport

# replayed: every record sent (or settled before), the message removed; waiting: the lease is
# not over yet; due: a dry run's "would replay now"; failed: the replay left records unsent or
# could not read a file (the message stays); unreadable: not an invocation record (it stays).
ReplayStatus = Literal["replayed", "waiting", "due", "failed", "unreadable"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Named(_Loose):
    name: str = Field(min_length=1)


class _Key(_Loose):
    key: str = Field(min_length=1)


class _S3(_Loose):
    bucket: _Named
    object: _Key


class _S3Record(_Loose):
    s3: _S3


class _S3Event(_Loose):
    records: list[_S3Record] = Field(alias="Records", min_length=1)


class _Context(_Loose):
    condition: str = ""
    function_arn: str = Field(default="", alias="functionArn")


class _InvocationRecord(_Loose):
    """Lambda's invocation record (AWS Lambda guide, "Capturing records of Lambda asynchronous
    invocations"): the event it gave up on is `requestPayload`, the last error
    `responsePayload`."""

    timestamp: datetime
    request_context: _Context = Field(default_factory=_Context, alias="requestContext")
    request_payload: _S3Event = Field(alias="requestPayload")
    response_payload: Any = Field(default=None, alias="responsePayload")


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
    try:
        record = _InvocationRecord.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise ValueError(
            f"not a Lambda invocation record of an S3 event: {where}: {first['msg']}"
        ) from None
    files = tuple(
        (r.s3.bucket.name, unquote_plus(r.s3.object.key))
        for r in record.request_payload.records
        if unquote_plus(r.s3.object.key).endswith(".avro")  # as `ingest_currents` reads them
    )
    if not files:
        raise ValueError("the S3 event names no .avro file")
    stamp = record.timestamp if record.timestamp.tzinfo else record.timestamp.replace(tzinfo=UTC)
    return FailedDelivery(
        files, stamp.timestamp(), _reason(record.response_payload), record.request_context.condition
    )


def _reason(payload: Any) -> str:
    if isinstance(payload, dict):
        text = f"{payload.get('errorType', '')}: {payload.get('errorMessage', '')}"
        return text.strip(": ")
    return "" if payload is None else str(payload)[:500]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class CurrentsReplay:
    """What `replay-currents` did with one message of the failures queue."""

    message_id: str
    status: ReplayStatus
    files: list[str] = field(default_factory=list)  # s3:// URIs
    failed_at: str = ""  # Lambda's last attempt (ISO 8601, UTC)
    due_at: str = ""  # from when a replay is safe: the claims' lease is over
    reason: str = ""  # why Lambda gave up, or why this replay did not finish
    reports: list[CurrentsReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "reports"}
        return out | {"reports": [r.as_dict() for r in self.reports]}
