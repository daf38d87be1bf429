"""The local store on the serving path: what a filter sees of a user's events, and where a
server's WAL checkpoints run."""

from __future__ import annotations

import sqlite3
import time
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


def _in_database_file(path: Path) -> int:
    """Events in the database file itself, not counting the WAL's (what a checkpoint moved).
    `immutable` reads the file without its WAL and without locks, so a read while the
    checkpointer writes pages can fail (a malformed image): that counts as not moved yet."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM interactions").fetchone()[0])
    except sqlite3.DatabaseError:  # no schema checkpointed yet, or a page half written
        return 0
    finally:
        db.close()


def test_a_server_checkpoints_its_events_on_a_thread_not_in_their_commit(tmp_path: Path) -> None:
    """Once a process takes API events, no commit runs a checkpoint (its request would wait
    for 4 MB to be copied and synced); a thread moves them into the database file instead,
    which is also what syncs the WAL (the bound on what a power loss could take)."""
    store = LocalStore(tmp_path)
    store.background_checkpoints(every=0.05)
    store.add_events([_event("u1", f"i{n}", "view", n) for n in range(50)])
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 30  # a loaded CI machine
    while _in_database_file(store.path) < 50:
        assert time.monotonic() < deadline, "the checkpointer never ran"
        time.sleep(0.02)
    store.add_events([_event("u2", "i1", "view", 1)])
    assert len(store.user_events("u1")) == 50 and store.has_events("u2")


def test_a_process_that_takes_no_events_keeps_sqlite_checkpointing(tmp_path: Path) -> None:
    """The CLI's imports and training checkpoint as SQLite does: they start no thread."""
    store = LocalStore(tmp_path)
    store.upsert("items", [("i1", {"name": "x"})], merge=False)
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
