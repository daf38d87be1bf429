"""The local store's reads on the serving path: what a filter sees of a user's events."""

from __future__ import annotations

from pathlib import Path

from chalicelib.engine.filters import recent_events
from chalicelib.providers.local.store import LocalStore


def _event(user: str, item: str, kind: str, ts: float) -> dict[str, object]:
    return {
        "user_id": user, "item_id": item, "event_type": kind, "event_value": None, "ts": ts,
        "session_id": "s", "event_id": None, "recommendation_id": None, "impression": None,
        "properties": None,
    }  # fmt: skip


def test_filter_events_are_the_newest_of_each_type_oldest_first(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    rows = [_event("u1", f"p{n}", "purchase", n) for n in range(250)]
    rows += [_event("u1", f"v{n}", "view", 1000 + n) for n in range(3)]
    rows += [_event("u1", "c1", "Purchase", 2000), _event("u2", "x", "purchase", 1)]
    store.add_events(rows)
    everything = store.user_events("u1")
    got = store.filter_events("u1", 100)
    # Each exact type gives its newest 100; the filter's own per-type cut (case-blind, as in
    # Personalize) then sees exactly what it would have seen in the whole history.
    assert len(got) == 100 + 3 + 1
    assert got == sorted(got, key=lambda e: e[2])
    assert recent_events(got) == recent_events(everything)
    assert store.filter_events("nobody", 100) == []
    assert store.has_events("u2") and not store.has_events("nobody")
