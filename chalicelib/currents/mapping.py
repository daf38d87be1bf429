"""One Braze Currents record to what it means here: a Personalize event for the shop's user id
(`external_user_id`) and an engagement kept for attribution, or the reason it is neither.

Braze's fields used (its schemas have more; unions are nullable): every record has `id`,
`user_id` (Braze's), `external_user_id` and `time` (epoch seconds); purchases `product_id`,
`price`, `quantity`, `currency`; custom events `name` and `properties` (a JSON string); email
clicks `url` and `campaign_id`; Content Card events `campaign_id`, `canvas_step_id`,
`content_card_id` and no item: they are joined to the list served to that user for that
campaign (or Canvas step), whose recommendation id and items they then carry.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from chalicelib.config import CurrentsConfig
from chalicelib.payloads import MAX_ID, parse_timestamp
from chalicelib.vocabulary import Engagement, EngagementKind, ServedList

Kind = Literal["purchase", "custom", "email_click", "card_click", "card_impression"]
KINDS: dict[str, Kind] = {
    "users.behaviors.Purchase": "purchase",
    "users.behaviors.CustomEvent": "custom",
    "users.messages.email.Click": "email_click",
    "users.messages.contentcard.Click": "card_click",
    "users.messages.contentcard.Impression": "card_impression",
}
MAX_RECOMMENDATION_ID = 40  # PutEvents' recommendationId
MAX_IMPRESSION = 25  # PutEvents' impression list
_PRINTABLE_ID = re.compile(r"^[\x21-\x7e]+$")
ServedTo = Callable[[str, str | None, float], ServedList | None]


@dataclass(frozen=True, slots=True)
class Mapped:
    """A record with a meaning: `entry` is its PutEvents event (None: kept for attribution only)."""

    record_id: str
    user_id: str
    session_id: str
    entry: dict[str, Any] | None
    engagement: Engagement


class Skip(Exception):
    """A record that is no event: `reason` is counted in the file's report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def event_id(record_id: str) -> str:
    """Personalize's eventId for a Currents record: stable, so a repeat is never trained on."""
    return hashlib.blake2b(f"currents\x1f{record_id}".encode(), digest_size=16).hexdigest()


def _text(record: Mapping[str, Any], field: str, required: bool = False) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        if required:
            raise Skip("bad_record", f"{field} is missing")
        return None
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise Skip("bad_record", f"{field} is not a string of at most {MAX_ID} characters")
    return value


def _number(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Skip("bad_record", f"{field} is not a number") from None
    if not math.isfinite(number):
        raise Skip("bad_record", f"{field} is not a finite number")
    return number


def _properties(record: Mapping[str, Any]) -> dict[str, Any]:
    raw = record.get("properties")
    if raw in (None, ""):
        return {}
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise Skip("bad_record", "properties is not JSON") from None
    if not isinstance(parsed, dict):
        raise Skip("bad_record", "properties is not a JSON object")
    return parsed


def _item_pattern(options: CurrentsConfig, url_template: str) -> re.Pattern[str] | None:
    if options.item_url_pattern:
        return re.compile(options.item_url_pattern)
    if "{id}" not in url_template:
        return None
    head = url_template.split("{id}", 1)[0]
    return re.compile(re.escape(head) + r"(?P<item_id>[^/?#&]+)")


def recommendation_id(value: Any) -> str | None:
    """A recommendation id as PutEvents takes it, or None (a hostile or mangled link)."""
    if not isinstance(value, str) or not value or len(value) > MAX_RECOMMENDATION_ID:
        return None
    return value if _PRINTABLE_ID.match(value) else None


@dataclass(slots=True)
class Seen:
    """A record being mapped, with the fields every kind has."""

    record: Mapping[str, Any]
    record_id: str
    user: str
    ts: float
    campaign: str | None

    def engagement(
        self, kind: EngagementKind, item: str | None, rid: str | None = None, **more: Any
    ) -> Engagement:
        return Engagement(
            self.record_id, self.user, kind, self.ts, item, rid, self.campaign, **more
        )


Meaning = tuple[Engagement, dict[str, Any] | None]


class Mapper:
    def __init__(self, options: CurrentsConfig, url_template: str, served_to: ServedTo) -> None:
        self.options = options
        self.served_to = served_to
        self._items = _item_pattern(options, url_template)

    def map(self, kind_name: str | None, record: Mapping[str, Any]) -> Mapped:
        """The record's meaning; `Skip` with the reason when it has none."""
        kind = KINDS.get(kind_name or "")
        if kind is None:
            raise Skip("unmapped_type", kind_name or "no event type in the key")
        record_id = _text(record, "id", required=True)
        assert record_id is not None
        user = _text(record, "external_user_id")
        if user is None:
            raise Skip("no_external_id")
        braze_user = _text(record, "user_id") or user
        ts = _number(record.get("time"), "time")
        try:
            ts = parse_timestamp(ts)
        except ValueError as exc:
            raise Skip("bad_record", f"time: {exc}") from None
        seen = Seen(record, record_id, user, ts, _text(record, "campaign_id") or None)
        if seen.campaign is None:
            seen.campaign = _text(record, "canvas_step_id")
        meaning = {
            "purchase": self._purchase,
            "custom": self._custom,
            "email_click": self._email_click,
            "card_click": self._card_click,
            "card_impression": self._card_impression,
        }[kind]
        engagement, entry = meaning(seen)
        if entry is not None:
            entry = {"eventId": event_id(record_id), "sentAt": ts, **entry}
        return Mapped(record_id, user, braze_user, entry, engagement)

    def _purchase(self, seen: Seen) -> Meaning:
        item = _text(seen.record, "product_id", required=True)
        price = _number(seen.record.get("price"), "price")
        quantity = _number(seen.record.get("quantity"), "quantity") or 1.0
        value = None if price is None else price * quantity
        event_type = self.options.purchase_event_type
        engagement = seen.engagement("purchase", item, value=value, event_type=event_type)
        entry: dict[str, Any] = {"eventType": event_type, "itemId": item}
        if value is not None:
            entry["eventValue"] = value
        return engagement, entry if event_type else None

    def _custom(self, seen: Seen) -> Meaning:
        name = _text(seen.record, "name", required=True) or ""
        custom = self.options.custom_events.get(name)
        if custom is None:
            raise Skip("unmapped_custom_event", name)
        props = _properties(seen.record)
        item = props.get(custom.item_id)
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not 0 < len(item) <= MAX_ID:
            raise Skip("no_item", f"{name}: no {custom.item_id} property")
        value = _number(props.get(custom.value), custom.value) if custom.value else None
        entry: dict[str, Any] = {"eventType": custom.event_type, "itemId": item}
        if value is not None:
            entry["eventValue"] = value
        engagement = seen.engagement("event", item, value=value, event_type=custom.event_type)
        return engagement, entry

    def _email_click(self, seen: Seen) -> Meaning:
        url = seen.record.get("url")
        found = self._items.search(url) if self._items and isinstance(url, str) else None
        if found is None or not 0 < len(found.group("item_id")) <= MAX_ID:
            raise Skip("not_an_item_link")
        item = found.group("item_id")
        query = parse_qs(urlsplit(str(url)).query)
        rid = recommendation_id(query.get(self.options.recommendation_id_parameter, [""])[0])
        event_type = self.options.email_click_event_type
        engagement = seen.engagement("click", item, rid, event_type=event_type)
        entry: dict[str, Any] = {"eventType": event_type, "itemId": item}
        if rid:
            entry["recommendationId"] = rid
        return engagement, entry if event_type else None

    def _card_click(self, seen: Seen) -> Meaning:
        return self._card(seen, "click", self.options.content_card_click_event_type)

    def _card_impression(self, seen: Seen) -> Meaning:
        return self._card(seen, "impression", self.options.content_card_impression_event_type)

    def _card(self, seen: Seen, kind: EngagementKind, event_type: str) -> Meaning:
        """Content Cards name no item: the list this user was served for this campaign (or
        Canvas step) says what the card showed."""
        served = self.served_to(seen.user, seen.campaign, seen.ts)
        if served is None:
            raise Skip("not_served", seen.campaign or "no campaign")
        rid = served.recommendation_id
        engagement = seen.engagement(kind, None, rid, event_type=event_type or None)
        if not event_type:
            return engagement, None
        entry: dict[str, Any] = {"eventType": event_type, "recommendationId": rid}
        if served.item_ids:
            entry["impression"] = list(served.item_ids[:MAX_IMPRESSION])
        return engagement, entry
