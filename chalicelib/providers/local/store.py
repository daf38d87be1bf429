"""The `local` provider's store: interactions, users, items, solution versions and campaigns in one
SQLite file that survives restarts of the server.

SQLite (standard library, WAL mode) rather than a server: the local provider must run with nothing
installed but Python. Each thread gets its own connection, because the servers answer requests
on several threads (and the production server in several processes: SQLite locks the file).
Every SQLite or OS error becomes `StoreUnavailable` (see `database`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from chalicelib.providers.local.database import Database, StoreUnavailable, guarded, rollback

SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_value REAL,
    ts REAL NOT NULL,
    session_id TEXT,
    event_id TEXT UNIQUE,
    recommendation_id TEXT,
    impression TEXT,
    properties TEXT
);
CREATE INDEX IF NOT EXISTS interactions_user ON interactions (user_id, seq);
CREATE INDEX IF NOT EXISTS interactions_user_type ON interactions (user_id, event_type, seq);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, properties TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, properties TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS solution_versions (
    version_id TEXT PRIMARY KEY,
    solution TEXT NOT NULL,
    recipe TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    metrics TEXT NOT NULL,
    counts TEXT NOT NULL,
    training_seconds REAL NOT NULL,
    created REAL NOT NULL,
    max_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY, version_id TEXT NOT NULL, updated REAL
);
"""

# The distinct event types of one user by index seeks, one per type (SQLite does no skip scan):
# each step asks the index for the next type after the last one.
_USER_EVENT_TYPES = """
WITH RECURSIVE kinds(kind) AS (
    SELECT MIN(event_type) FROM interactions WHERE user_id = ?1
    UNION ALL
    SELECT (SELECT MIN(event_type) FROM interactions WHERE user_id = ?1 AND event_type > kind)
    FROM kinds WHERE kind IS NOT NULL
)
SELECT kind FROM kinds WHERE kind IS NOT NULL
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class LocalStore(Database):
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.models_dir = data_dir / "models"
        super().__init__(data_dir / "store.sqlite3", SCHEMA, [self.models_dir])

    @guarded
    def bulk_load(
        self,
        dataset: str,
        rows: Iterable[tuple[Any, ...]],
        replace: bool,
        keep: Callable[[], bool],
        *,
        chunk: int = 20_000,
        keep_events: bool = False,
    ) -> int:
        """Load rows in one transaction, committed only if `keep()` says so once all rows are
        read (a file with a bad row loads nothing). `replace` empties the dataset first; with
        `keep_events`, interactions that came one at a time (with a session) stay, as
        Personalize's FULL import keeps what PutEvents recorded."""
        table = {"interactions": "interactions", "users": "users", "items": "items"}[dataset]
        if table == "interactions":
            sql = (
                "INSERT OR IGNORE INTO interactions (user_id, item_id, event_type, event_value, "
                "ts, session_id, event_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
        else:
            key = "user_id" if table == "users" else "item_id"
            sql = (
                f"INSERT INTO {table} ({key}, properties, updated) VALUES (?, ?, ?) "
                f"ON CONFLICT({key}) DO UPDATE SET properties = excluded.properties, "
                "updated = excluded.updated"
            )
            now = time.time()
            rows = ((entity, _dumps(props), now) for entity, props in rows)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                events = keep_events and table == "interactions"
                only_bulk = " WHERE session_id IS NULL" if events else ""
                db.execute(f"DELETE FROM {table}{only_bulk}")
            loaded = 0
            for batch in _chunks(rows, chunk):
                db.executemany(sql, batch)
                loaded += len(batch)
            if not keep():
                rollback(db)
                return 0
            self._bump(db, f"{table}_rev")
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return loaded

    def _bump(self, db: sqlite3.Connection, key: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1",
            (key,),
        )

    # -- writes ------------------------------------------------------------------------------

    @guarded
    def add_events(self, rows: Sequence[dict[str, Any]]) -> int:
        """The API's events (PutEvents): this process is a server, whose checkpoints run off
        the request path from now on."""
        self.background_checkpoints()
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO interactions (user_id, item_id, event_type, event_value, "
                "ts, session_id, event_id, recommendation_id, impression, properties) VALUES "
                "(:user_id, :item_id, :event_type, :event_value, :ts, :session_id, :event_id, "
                ":recommendation_id, :impression, :properties)",
                rows,
            )
            stored = db.total_changes - before
            # No revision bump: serving reads a user's new events on each request, and nothing
            # watches `interactions_rev`; the bump put the meta page in every event's commit.
        return stored

    @guarded
    def upsert(self, table: str, rows: Iterable[tuple[str, dict[str, Any]]], merge: bool) -> int:
        """Insert or update users/items. `merge` keeps fields the update does not mention
        (PutItems semantics for one-off updates); a bulk import replaces."""
        key = {"users": "user_id", "items": "item_id"}[table]
        now = time.time()
        count = 0
        with self.transaction() as db:
            for entity_id, given in rows:
                properties = given
                if merge:
                    found = db.execute(
                        f"SELECT properties FROM {table} WHERE {key} = ?", (entity_id,)
                    ).fetchone()
                    if found:
                        properties = {**json.loads(found[0]), **given}
                db.execute(
                    f"INSERT INTO {table} ({key}, properties, updated) VALUES (?, ?, ?) "
                    f"ON CONFLICT({key}) DO UPDATE SET properties = excluded.properties, "
                    "updated = excluded.updated",
                    (entity_id, _dumps(properties), now),
                )
                count += 1
            self._bump(db, f"{table}_rev")
        return count

    # -- reads -------------------------------------------------------------------------------

    @guarded
    def revisions(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    @guarded
    def items(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self.db.execute("SELECT item_id, properties FROM items").fetchall()
        return [(item_id, json.loads(properties)) for item_id, properties in rows]

    @guarded
    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT properties FROM users WHERE user_id = ?", (user_id,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    @guarded
    def user_events(self, user_id: str, after_seq: int = 0) -> list[tuple[str, str, float]]:
        """(item_id, event_type, ts) of the user's events stored after `after_seq`, oldest first."""
        return self.db.execute(
            "SELECT item_id, event_type, ts FROM interactions WHERE user_id = ? AND seq > ? "
            "ORDER BY seq",
            (user_id, after_seq),
        ).fetchall()

    @guarded
    def has_events(self, user_id: str) -> bool:
        query = "SELECT 1 FROM interactions WHERE user_id = ? LIMIT 1"
        return self.db.execute(query, (user_id,)).fetchone() is not None

    @guarded
    def filter_events(self, user_id: str, per_type: int) -> list[tuple[str, str, float]]:
        """(item_id, event_type, ts) of the user's newest `per_type` events of each type, oldest
        first: what a Personalize filter reads. Index seeks only, so a customer with thousands
        of orders (the sample's heaviest has 5,570) costs what one with a hundred does."""
        db = self.db
        rows: list[tuple[str, str, float, int]] = []
        for (kind,) in db.execute(_USER_EVENT_TYPES, (user_id,)).fetchall():
            rows += db.execute(
                "SELECT item_id, event_type, ts, seq FROM interactions "
                "WHERE user_id = ? AND event_type = ? ORDER BY seq DESC LIMIT ?",
                (user_id, kind, per_type),
            ).fetchall()
        rows.sort(key=lambda row: row[3])
        return [(item, kind, ts) for item, kind, ts, _ in rows]

    @guarded
    def interactions(self, max_seq: int | None = None) -> list[tuple[str, str, str, float, float]]:
        """All (user, item, event_type, event_value, ts) up to `max_seq`, for training."""
        sql = "SELECT user_id, item_id, event_type, event_value, ts FROM interactions"
        if max_seq is None:
            return self.db.execute(sql).fetchall()
        return self.db.execute(sql + " WHERE seq <= ?", (max_seq,)).fetchall()

    @guarded
    def max_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM interactions").fetchone()[0])

    @guarded
    def counts(self) -> dict[str, int]:
        db = self.db
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("interactions", "users", "items")
        }

    @guarded
    def popular_items(self, limit: int) -> list[str]:
        rows = self.db.execute(
            "SELECT item_id FROM interactions GROUP BY item_id "
            "ORDER BY COUNT(DISTINCT user_id) DESC, item_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [r[0] for r in rows]

    # -- solution versions and campaigns -----------------------------------------------------

    @guarded
    def save_version(self, info: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO solution_versions (version_id, solution, recipe, status, params, "
                "metrics, counts, training_seconds, created, max_seq) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    info["version_id"],
                    info["solution"],
                    info["recipe"],
                    info["status"],
                    _dumps(info["params"]),
                    _dumps(info["metrics"]),
                    _dumps(info["counts"]),
                    info["training_seconds"],
                    info["created"],
                    info["max_seq"],
                ),
            )

    @guarded
    def version(self, version_id: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT * FROM solution_versions WHERE version_id = ?", (version_id,))
        row = cur.fetchone()
        if row is None:
            return None
        info = dict(zip([c[0] for c in cur.description], row, strict=True))
        for key in ("params", "metrics", "counts"):
            info[key] = json.loads(info[key])
        return info

    @guarded
    def latest_version(self, solution: str | None) -> dict[str, Any] | None:
        sql = "SELECT version_id FROM solution_versions"
        args: tuple[str, ...] = ()
        if solution:
            sql += " WHERE solution = ?"
            args = (solution,)
        row = self.db.execute(sql + " ORDER BY created DESC LIMIT 1", args).fetchone()
        return None if row is None else self.version(row[0])

    @guarded
    def versions(self, solution: str | None) -> list[dict[str, Any]]:
        sql = "SELECT version_id FROM solution_versions"
        args: tuple[str, ...] = ()
        if solution:
            sql += " WHERE solution = ?"
            args = (solution,)
        rows = self.db.execute(sql + " ORDER BY created DESC", args).fetchall()
        return [v for (version_id,) in rows if (v := self.version(version_id)) is not None]

    @guarded
    def delete_version(self, version_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM solution_versions WHERE version_id = ?", (version_id,))

    @guarded
    def deploy(self, campaign: str, version_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO campaigns (name, version_id, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET version_id = excluded.version_id, "
                "updated = excluded.updated",
                (campaign, version_id, time.time()),
            )
            self._bump(db, "campaigns_rev")

    @guarded
    def campaigns(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, version_id FROM campaigns").fetchall())


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


__all__ = ["LocalStore", "StoreUnavailable"]
