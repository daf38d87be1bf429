"""PutEvents, PutUsers and PutItems: Personalize's request shapes built from the edge models, and
the verdict on each call, telling a failure that may pass later from one that never will.

botocore checks no maximum, so every limit (10 records a call, 1,024-character event properties,
256-character ids, 25 impressions, 40-character recommendation ids) is checked by the pydantic
models in `chalicelib.payloads` before a call is built here.

Properties reach Personalize under the camelCase names it matches to the dataset's schema fields
(`NUMBER_OF_RATINGS`, `number_of_ratings` and `numberOfRatings` all become `numberOfRatings`), and
only those: a key no schema field matches is left out of the call (an item's `url` or `image`
decorates responses from the item table but is not Personalize metadata). A list value is one
categorical field with several values, sent joined with `|` as Personalize asks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from chalicelib.catalogue import field_name
from chalicelib.payloads import Event, Item, User

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


# Interactions columns PutEvents carries as its own members (or refuses as property keys).
EVENT_COLUMNS = frozenset(
    {
        "USER_ID",
        "ITEM_ID",
        "TIMESTAMP",
        "EVENT_TYPE",
        "EVENT_VALUE",
        "IMPRESSION",
        "RECOMMENDATION_ID",
        "EVENT_ATTRIBUTION_SOURCE",
    }
)
ID_COLUMNS = frozenset({"USER_ID", "ITEM_ID"})


@lru_cache(maxsize=4096)
def camel(key: str) -> str:
    """The camelCase name under which Personalize matches a property to a schema field."""
    first, *rest = field_name(key).split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def property_names(schema_fields: Iterable[str], members: frozenset[str]) -> frozenset[str]:
    """The camelCase property names a dataset's schema accepts (its fields less `members`)."""
    return frozenset(camel(f) for f in schema_fields if f.upper() not in members)


def properties_json(values: Mapping[str, Any], names: frozenset[str] | None) -> str | None:
    """`values` as Personalize's properties string: camelCase keys that `names` holds (all when
    `names` is None), lists joined with `|`; None when nothing is left."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = camel(key)
        if value is None or (names is not None and name not in names):
            continue
        out[name] = "|".join(map(str, value)) if isinstance(value, list | tuple) else value
    return _json(out) if out else None


def event_id(source_id: str, envelope: int, index: int) -> str:
    """A stable id for an event that came without one: the same record redelivered gives the same
    ids, and Personalize ignores a repeated event id for training (a second line of defence
    behind the handlers' never-send-twice rules)."""
    digest = hashlib.blake2b(f"{source_id}\x1f{envelope}\x1f{index}".encode(), digest_size=16)
    return digest.hexdigest()


def event_entry(
    event: Event, default_id: str, names: frozenset[str] | None = None
) -> dict[str, Any]:
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
    properties = properties_json(event.properties, names) if event.properties else None
    if properties:
        entry["properties"] = properties
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


def put_users(
    client: Any, dataset_arn: str, users: Sequence[User], names: frozenset[str] | None = None
) -> CallResult:
    pairs = [(u.user_id, u.properties) for u in users]
    return _put_metadata(client.put_users, dataset_arn, ("users", "userId"), pairs, names)


def put_items(
    client: Any, dataset_arn: str, items: Sequence[Item], names: frozenset[str] | None = None
) -> CallResult:
    pairs = [(i.item_id, i.properties) for i in items]
    return _put_metadata(client.put_items, dataset_arn, ("items", "itemId"), pairs, names)


def _put_metadata(
    call: Any,
    dataset_arn: str,
    members: tuple[str, str],
    pairs: Sequence[tuple[str, dict[str, Any]]],
    names: frozenset[str] | None,
) -> CallResult:
    """PutUsers/PutItems replace each record whole on Personalize. A record with no property the
    schema knows is not sent: an empty record would erase the metadata Personalize has."""
    field, key = members
    records = []
    for record_id, props in pairs:
        properties = properties_json(props, names)
        if properties is not None:
            records.append({key: record_id, "properties": properties})
    if not records:
        return ACCEPTED
    try:
        call(datasetArn=dataset_arn, **{field: records})
    except Exception as error:
        return classify(error)
    return ACCEPTED
