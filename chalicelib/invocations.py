"""An S3 event an S3-triggered function gave up on, as Lambda keeps it in the function's
on-failure destination queue: Lambda's invocation record, read back into the files of the event,
when Lambda made its last attempt and why it failed; and what a replay command did with one
message (`replay-currents`, `replay-imports`), in one JSON shape.

The record's layout is AWS's (Lambda guide, "Capturing records of Lambda asynchronous
invocations"): the event it gave up on is `requestPayload`, the last error `responsePayload`,
its last attempt `timestamp`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.vocabulary import ImportReport

# replayed: every file done (the message removed); waiting: not safe to replay yet; due: a dry
# run's "would replay now"; failed: the replay did not finish a file (the message stays, with
# the reason); unreadable: not an invocation record of an S3 event (it stays).
ReplayStatus = Literal["replayed", "waiting", "due", "failed", "unreadable", "dropped"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Named(_Loose):
    name: str = Field(min_length=1)


class _Object(_Loose):
    key: str = Field(min_length=1)
    version_id: str | None = Field(default=None, alias="versionId")


class _S3(_Loose):
    bucket: _Named
    object: _Object


class _S3Record(_Loose):
    s3: _S3


class _S3Event(_Loose):
    records: list[_S3Record] = Field(alias="Records", min_length=1)


class _Context(_Loose):
    condition: str = ""
    function_arn: str = Field(default="", alias="functionArn")


class _InvocationRecord(_Loose):
    timestamp: datetime
    request_context: _Context = Field(default_factory=_Context, alias="requestContext")
    request_payload: _S3Event = Field(alias="requestPayload")
    response_payload: Any = Field(default=None, alias="responsePayload")


class S3File(NamedTuple):
    bucket: str
    key: str  # URL-decoded, as the functions read it
    version: str | None = None  # the object version the event announced (a versioned bucket)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class GivenUp:
    """One invocation record: the files of its event the function reads, and Lambda's last
    attempt at them."""

    files: tuple[S3File, ...]
    failed_at: float  # epoch seconds of Lambda's last attempt
    reason: str  # the function's last error, as Lambda recorded it
    condition: str  # RetriesExhausted, or EventAgeExceeded


def read_record(body: str, wanted: Callable[[str], bool], what: str) -> GivenUp:
    """The files of an invocation record whose (decoded) key `wanted` takes; ValueError for a
    body that is not such a record, or names no such file (`what` says which files)."""
    try:
        record = _InvocationRecord.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise ValueError(
            f"not a Lambda invocation record of an S3 event: {where}: {first['msg']}"
        ) from None
    files = tuple(
        S3File(r.s3.bucket.name, unquote_plus(r.s3.object.key), r.s3.object.version_id)
        for r in record.request_payload.records
        if wanted(unquote_plus(r.s3.object.key))
    )
    if not files:
        raise ValueError(f"the S3 event names no {what}")
    stamp = record.timestamp if record.timestamp.tzinfo else record.timestamp.replace(tzinfo=UTC)
    return GivenUp(
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
class Replay:
    """What a replay command did with one message of a failures queue; each command's own
    kind adds its `reports` (one per file it ran again) and what else it needs."""

    message_id: str
    status: ReplayStatus
    files: list[str] = field(default_factory=list)  # s3:// URIs
    failed_at: str = ""  # Lambda's last attempt (ISO 8601, UTC)
    reason: str = ""  # why Lambda gave up, or why this replay did not finish

    def as_dict(self) -> dict[str, Any]:
        """Every field, in order; each report through its own `as_dict` (or as its fields)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "reports":
                value = [_plain(r) for r in value]
            out[f.name] = value
        return out


@dataclass
class ImportReplay(Replay):
    """What `replay-imports` did with one message of `import_s3`'s failures queue: each file's
    import report (the `import` command's), and Lambda's last error kept beside the reason this
    replay did not finish."""

    lambda_error: str = ""  # why Lambda gave up, whatever the replay says
    reports: list[ImportReport] = field(default_factory=list)


def _plain(report: Any) -> Any:
    if hasattr(report, "as_dict"):
        return report.as_dict()
    return {f.name: getattr(report, f.name) for f in fields(report)}
