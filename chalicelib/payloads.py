"""Pydantic models of every payload at the HTTP and queue edges, with Personalize's limits.

botocore checks minimum lengths but never maximums, so every maximum Personalize enforces
(10 events a call, 256-character ids, 1,024-character event properties, ...) is checked here.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

MAX_ID = 256
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
# Epoch seconds beyond this are almost surely milliseconds sent by mistake (year 2100).
MAX_EPOCH_SECONDS = 4_102_444_800
# `timestamp` as /openapi.json states it: a subset of what `parse_timestamp` takes, so that every
# value the description allows is accepted (epoch seconds, or ISO-8601 dates of 1971-2099).
_ISO_8601 = (
    r"^(197[1-9]|19[89][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?)?$"
)
TIMESTAMP_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_EPOCH_SECONDS},
        {"type": "string", "pattern": r"^([0-9]{1,9}|[1-3][0-9]{9})(\.[0-9]{1,6})?$"},
        {"type": "string", "pattern": _ISO_8601},
    ],
    "description": "epoch seconds (number or string) or ISO-8601 (UTC if no offset); default now",
}
RESERVED_EVENT_PROPERTIES = frozenset(
    {"userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression"}
)


# The Braze campaign or Canvas step a Connected Content call names
# (`&campaign={{campaign.${api_id}}}`): empty outside a campaign (a test send), which means none.
Tag = Annotated[str, StringConstraints(max_length=MAX_ID, strip_whitespace=True)] | None


class _Edge(BaseModel):
    # Numeric ids (e.g. 13085) are common in shop backends: accept them as strings. A model is
    # built on its first use (defer_build): a cold Lambda builds only the ones its route needs.
    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, defer_build=True
    )


_EVENT_PROPERTIES: dict[str, Any] = {
    "minProperties": 1,
    "propertyNames": {
        "not": {
            "pattern": "^("
            + "|".join(
                "".join(f"[{c}{c.upper()}]" for c in name)
                for name in sorted(RESERVED_EVENT_PROPERTIES)
            )
            + ")$"
        }
    },
    "description": "at most 1,024 characters as JSON; Personalize's reserved names refused",
}


def _json_limited(value: dict[str, Any], limit: int) -> dict[str, Any]:
    try:  # NaN and Infinity are not JSON: a response holding one could not be parsed
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValueError("properties hold a number that is not finite (NaN or Infinity)") from None
    if len(encoded) > limit:
        raise ValueError(f"properties are {len(encoded)} characters as JSON; the limit is {limit}")
    return value


def parse_timestamp(value: object) -> float:
    """Epoch seconds (number or numeric string) or ISO-8601; naive times are UTC."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be epoch seconds or ISO-8601, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValueError("timestamp must be epoch seconds or ISO-8601") from exc
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            value = parsed.timestamp()
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("timestamp must be epoch seconds or ISO-8601")
    if not 0 <= value <= MAX_EPOCH_SECONDS:
        raise ValueError("timestamp must be epoch seconds between 1970 and 2100")
    return float(value)


class Event(_Edge):
    event_type: Id
    item_id: Id
    timestamp: Annotated[float, WithJsonSchema(TIMESTAMP_SCHEMA)] = Field(default_factory=time.time)
    event_value: float | None = None
    event_id: Id | None = None
    properties: dict[str, Any] | None = Field(default=None, json_schema_extra=_EVENT_PROPERTIES)
    recommendation_id: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    impression: Annotated[list[Id], Field(min_length=1, max_length=25)] | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> float:
        return parse_timestamp(value)

    @field_validator("event_value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("event_value must be a finite number")
        return value

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        reserved = sorted(k for k in value if k.lower() in RESERVED_EVENT_PROPERTIES)
        if reserved:
            raise ValueError(f"reserved property names: {', '.join(reserved)}")
        if not value:
            raise ValueError("properties must not be empty; leave the field out instead")
        return _json_limited(value, 1024)


class EventBatch(_Edge):
    """`POST /events` and the `{"type": "events"}` queue envelope: one user, one session."""

    user_id: Id
    session_id: Id | None = None
    events: Annotated[list[Event], Field(min_length=1, max_length=10)]

    @property
    def session(self) -> str:
        return self.session_id or self.user_id


class User(_Edge):
    user_id: Id
    properties: Annotated[dict[str, Any], Field(min_length=1)]

    @field_validator("properties")
    @classmethod
    def _size(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_limited(value, 24_000)


class Item(_Edge):
    item_id: Id
    properties: Annotated[dict[str, Any], Field(min_length=1)]

    @field_validator("properties")
    @classmethod
    def _size(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, price in value.items():
            # Responses render a numeric string price as a number: it must be a finite one.
            if key.strip().lower() == "price" and isinstance(price, str):
                try:
                    number = float(price)
                except ValueError:
                    continue
                if not math.isfinite(number):
                    raise ValueError(f"{key} {price[:20]!r} is not a finite number")
        return _json_limited(value, 32_000)


class UserBatch(_Edge):
    users: Annotated[list[User], Field(min_length=1, max_length=10)]


class ItemBatch(_Edge):
    items: Annotated[list[Item], Field(min_length=1, max_length=10)]


class RankingRequest(_Edge):
    user_id: Id
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]
    filter: str | None = None
    # A placeholder's values: a list, or one string (commas separate values, as in a query).
    filter_values: Annotated[
        dict[str, str | Annotated[list[str], Field(max_length=25)]], Field(max_length=25)
    ] = Field(default_factory=dict)
    campaign: Tag = None
    canvas_step: Tag = None


class RecommendationsQuery(_Edge):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    user_id: Id
    num_results: int = Field(default=25, ge=1, le=100)
    filter: str | None = None
    campaign: Tag = None
    canvas_step: Tag = None


class RelatedItemsQuery(_Edge):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    item_id: Id
    user_id: Id | None = None
    num_results: int = Field(default=25, ge=1, le=100)
    filter: str | None = None
    campaign: Tag = None
    canvas_step: Tag = None


def describe(error: ValidationError) -> str:
    """A one-line account of what was wrong and where, without echoing the input back."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"]).lstrip(
            "."
        )
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# The SPEC §4 envelopes carried by SQS message bodies and Kinesis record data.
class EventsEnvelope(EventBatch):
    type: Literal["events"]


class UsersEnvelope(UserBatch):
    type: Literal["users"]


class ItemsEnvelope(ItemBatch):
    type: Literal["items"]


Envelope = Annotated[EventsEnvelope | UsersEnvelope | ItemsEnvelope, Field(discriminator="type")]
ENVELOPE: TypeAdapter[EventsEnvelope | UsersEnvelope | ItemsEnvelope] = TypeAdapter(
    Envelope, config=ConfigDict(defer_build=True)
)
