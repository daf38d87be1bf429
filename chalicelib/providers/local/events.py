"""The `local` provider's event sink: events, users and items stored at once, so that a user's
next recommendations already reflect what they just did."""

from __future__ import annotations

import json
from collections.abc import Sequence

from chalicelib.catalogue import normalise
from chalicelib.payloads import EventBatch, Item, User
from chalicelib.providers.local.state import ServingState
from chalicelib.providers.local.store import LocalStore


class LocalEvents:
    def __init__(self, store: LocalStore, state: ServingState) -> None:
        self.store, self.state = store, state

    def put_events(self, batch: EventBatch) -> int:
        rows = [
            {
                "user_id": batch.user_id,
                "session_id": batch.session,
                "item_id": e.item_id,
                "event_type": e.event_type,
                "event_value": e.event_value,
                "ts": e.timestamp,
                "event_id": e.event_id,
                "recommendation_id": e.recommendation_id,
                "impression": "|".join(e.impression) if e.impression else None,
                "properties": json.dumps(e.properties) if e.properties else None,
            }
            for e in batch.events
        ]
        return self.store.add_events(rows)  # an event id stored before is not stored again

    def put_users(self, users: Sequence[User]) -> int:
        return self.store.upsert("users", ((u.user_id, u.properties) for u in users), merge=False)

    def put_items(self, items: Sequence[Item]) -> int:
        rows = ((i.item_id, normalise(i.properties)) for i in items)
        try:
            return self.store.upsert("items", rows, merge=False)
        finally:
            self.state.invalidate()
