"""PutEvents, PutUsers and PutItems: Personalize's request shapes built from the edge models, and
the verdict on each call, telling a failure that may pass later from one that never will.

botocore checks no maximum, so every limit (10 records a call, 1,024-character event properties,
256-character ids, 25 impressions, 40-character recommendation ids) is checked by the pydantic
models in `chalicelib.models` before a call is built here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from chalicelib.models import Event, Item, User

MAX_PER_CALL = 10

Verdict = Literal["accepted", "invalid", "retry"]

# Error codes that say the request itself is wrong: sending it again can never succeed.
INVALID_CODES = frozenset(
    {"InvalidInputException", "ValidationException", "SerializationException"}
)


@dataclass(frozen=True, slots=True)
class CallResult:
    verdict: Verdict
    reason: str = ""


ACCEPTED = CallResult("accepted")
# PutEvents declares no error but InvalidInputException, so a wrong or deleted RECS_TRACKING_ID
# comes back as "invalid input" too: a message about the tracker is the stage's fault, not the
# event's, and is retried (the queue's redrive keeps it) instead of dead-lettering every event.
_STAGE_PROBLEM = re.compile(r"tracking\s*id|trackingid|event tracker", re.IGNORECASE)


def event_id(source_id: str, envelope: int, index: int) -> str:
    """A stable id for an event that came without one: the same record redelivered gives the same
    ids, and Personalize ignores a repeated event id for training (a second line of defence
    behind the handlers' never-send-twice rules)."""
    digest = hashlib.blake2b(f"{source_id}\x1f{envelope}\x1f{index}".encode(), digest_size=16)
    return digest.hexdigest()


def event_entry(event: Event, default_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "eventId": event.event_id or default_id,
        "eventType": event.event_type,
        "itemId": event.item_id,
        # Each event keeps its own time: Personalize trains on sentAt, not on arrival. An aware
        # datetime serialises to the same epoch seconds as the float, but skips botocore's
        # generic timestamp parsing (dateutil's local-zone conversion), which was a third of
        # the CPU of a PutEvents call.
        "sentAt": datetime.fromtimestamp(event.timestamp, UTC),
    }
    if event.event_value is not None:
        entry["eventValue"] = event.event_value
    if event.properties:
        entry["properties"] = _json(event.properties)
    if event.recommendation_id:
        entry["recommendationId"] = event.recommendation_id
    if event.impression:
        entry["impression"] = list(event.impression)
    return entry


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def classify(error: Exception) -> CallResult:
    """`invalid` for a request Personalize refused as malformed; `retry` for everything else
    (throttling, 5xx, timeouts, a tracker or dataset not found while a stage is being set up, a
    tracking id Personalize does not know)."""
    from botocore.exceptions import ClientError, ParamValidationError  # noqa: PLC0415

    if isinstance(error, ParamValidationError):
        return CallResult("invalid", str(error).splitlines()[-1][:300])
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")[:300]
        if code in INVALID_CODES and not _STAGE_PROBLEM.search(message):
            return CallResult("invalid", f"{code}: {message}")
        return CallResult("retry", f"{code}: {message}")
    return CallResult("retry", f"{type(error).__name__}: {str(error)[:300]}")


def put_events(
    client: Any,
    tracking_id: str,
    user_id: str,
    session_id: str,
    entries: Sequence[dict[str, Any]],
) -> CallResult:
    try:
        client.put_events(
            trackingId=tracking_id, userId=user_id, sessionId=session_id, eventList=list(entries)
        )
    except Exception as error:  # every failure gets a verdict; none escapes the batch
        return classify(error)
    return ACCEPTED


def put_users(client: Any, dataset_arn: str, users: Sequence[User]) -> CallResult:
    pairs = [(u.user_id, u.properties) for u in users]
    return _put_metadata(client.put_users, dataset_arn, "users", "userId", pairs)


def put_items(client: Any, dataset_arn: str, items: Sequence[Item]) -> CallResult:
    pairs = [(i.item_id, i.properties) for i in items]
    return _put_metadata(client.put_items, dataset_arn, "items", "itemId", pairs)


def _put_metadata(
    call: Any, dataset_arn: str, field: str, key: str, pairs: Sequence[tuple[str, dict[str, Any]]]
) -> CallResult:
    records = [{key: record_id, "properties": _json(props)} for record_id, props in pairs]
    try:
        call(datasetArn=dataset_arn, **{field: records})
    except Exception as error:
        return classify(error)
    return ACCEPTED
