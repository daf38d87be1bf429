"""The `local` provider's loop with Braze: what was served and what users did with it, in its own
SQLite file (`loop.sqlite3` beside the store), so that a write per answer never waits on the
store's writers (imports, events).

Served lists are written behind the answer (`write_behind`): an answer only queues its list, which
reaches the file within `FLUSH_SECONDS`, and before anything of this process reads the lists.
Bounded in time and size: lists older than `RECS_SERVED_TTL_DAYS` go, and beyond
`RECS_SERVED_MAX_RECORDS` the oldest go; pruned every `PRUNE_EVERY` writes rather than on each
(a delete per answer would cost more than the insert), by the writer.

A Currents record id is claimed with a lease (`leases`, until `RECS_CURRENTS_LEASE_SECONDS` from
now) and moved to `claimed` once settled: a record delivered twice is forwarded once, and one
whose import died between the claim and the mark is taken again by a later import once its lease
is over.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chalicelib.attribution import CLICKS_INDEX, Attribution, attribution_in
from chalicelib.providers.local.database import Database, guarded
from chalicelib.providers.local.write_behind import queue_for
from chalicelib.vocabulary import ClaimOutcome, Engagement, ServedList

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS served (
    recommendation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    campaign TEXT,
    canvas_step TEXT,
    route TEXT NOT NULL,
    source TEXT NOT NULL,
    solution_version TEXT,
    items TEXT NOT NULL,
    served_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS served_user ON served (user_id, served_at);
CREATE INDEX IF NOT EXISTS served_time ON served (served_at);
CREATE TABLE IF NOT EXISTS engagements (
    event_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    item_id TEXT,
    recommendation_id TEXT,
    campaign TEXT,
    value REAL,
    event_type TEXT
);
CREATE INDEX IF NOT EXISTS engagements_time ON engagements (ts);
{CLICKS_INDEX};
CREATE TABLE IF NOT EXISTS claimed (record_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS leases (record_id TEXT PRIMARY KEY, lease_until REAL NOT NULL);
"""
PRUNE_EVERY = 1000
_COLUMNS = (
    "recommendation_id, user_id, campaign, canvas_step, route, source, solution_version, "
    "items, served_at"
)


def _served(row: Sequence[Any]) -> ServedList:
    rid, user, campaign, step, route, source, version, items, at = row
    return ServedList(rid, user, json.loads(items), route, source, at, version, campaign, step)


def _row(served: ServedList) -> tuple[Any, ...]:
    return (
        served.recommendation_id,
        served.user_id,
        served.campaign,
        served.canvas_step,
        served.route,
        served.source,
        served.solution_version,
        list(served.item_ids),
        served.served_at,
    )


# A batch goes in as one JSON array and one statement, each row encoded by its request: whatever
# Python work the writer thread does holds the GIL, and the server's request thread waits for
# it meanwhile. `->` and `->>` need SQLite 3.38; older ones get the rows one by one.
JSON_INSERT = sqlite3.sqlite_version_info >= (3, 38)
_INSERT_ROWS = f"INSERT OR REPLACE INTO served ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
_INSERT_JSON = (
    f"INSERT OR REPLACE INTO served ({_COLUMNS}) SELECT value->>0, value->>1, value->>2, "
    "value->>3, value->>4, value->>5, value->>6, value->7, value->>8 FROM json_each(?)"
)


class LocalLoop(Database):
    def __init__(
        self, data_dir: Path, ttl_days: int, max_records: int, lease_seconds: float = 960.0
    ) -> None:
        super().__init__(data_dir / "loop.sqlite3", SCHEMA)
        self.lease = lease_seconds
        self.ttl = ttl_days * 86_400.0
        self.max_records = max_records
        self._writes = 0
        self._behind = queue_for(self.path, "served lists")

    def record_served(self, served: ServedList) -> None:
        # Encoded here, by the request: the writer thread then does no Python work to speak of
        # (see _INSERT_JSON).
        row = json.dumps(_row(served), separators=(",", ":"))
        self._behind.put(row, self._write_served, self.drop_connection)

    def pending_served(self) -> int:
        """Served lists queued and not yet written."""
        return self._behind.pending()

    @guarded
    def flush(self) -> int:
        """Write the served lists this process queued for the file; how many."""
        return self._behind.flush(self._write_served)

    @guarded
    def _write_served(self, batch: list[str]) -> None:
        """Write served lists, each a JSON array of `_row`'s values."""
        with self.transaction() as db:
            if JSON_INSERT:
                db.execute(_INSERT_JSON, ("[" + ",".join(batch) + "]",))
            else:
                rows = [json.loads(row) for row in batch]
                db.executemany(_INSERT_ROWS, [(*r[:7], json.dumps(r[7]), r[8]) for r in rows])
        before, self._writes = self._writes, self._writes + len(batch)
        if self._writes // PRUNE_EVERY != before // PRUNE_EVERY:
            self.prune()

    @guarded
    def prune(self, now: float | None = None) -> int:
        """Drop what is older than the TTL, then the oldest beyond the size bound."""
        self.flush()
        cutoff = (now or time.time()) - self.ttl
        with self.transaction() as db:
            before = db.total_changes
            db.execute("DELETE FROM served WHERE served_at < ?", (cutoff,))
            db.execute("DELETE FROM engagements WHERE ts < ?", (cutoff,))
            db.execute("DELETE FROM claimed WHERE at < ?", (cutoff,))
            db.execute("DELETE FROM leases WHERE lease_until < ?", (cutoff,))
            db.execute(
                "DELETE FROM served WHERE served_at <= (SELECT served_at FROM served "
                "ORDER BY served_at DESC LIMIT 1 OFFSET ?)",
                (self.max_records,),
            )
            return db.total_changes - before

    @guarded
    def served_to(self, user_id: str, campaign: str | None, before: float) -> ServedList | None:
        self.flush()
        sql = f"SELECT {_COLUMNS} FROM served WHERE user_id = ? AND served_at <= ?"
        args: tuple[Any, ...] = (user_id, before)
        if campaign:
            sql += " AND (campaign = ? OR canvas_step = ?)"
            args += (campaign, campaign)
        row = self.db.execute(sql + " ORDER BY served_at DESC LIMIT 1", args).fetchone()
        return None if row is None else _served(row)

    @guarded
    def claim(self, record_ids: Sequence[str]) -> dict[str, ClaimOutcome]:
        now = time.time()
        outcomes: dict[str, ClaimOutcome] = {}
        with self.transaction() as db:
            for record_id in record_ids:
                if db.execute("SELECT 1 FROM claimed WHERE record_id = ?", (record_id,)).fetchone():
                    outcomes[record_id] = "done"
                    continue
                cursor = db.execute(
                    "INSERT INTO leases (record_id, lease_until) VALUES (?, ?) "
                    "ON CONFLICT (record_id) DO UPDATE SET lease_until = excluded.lease_until "
                    "WHERE leases.lease_until < ?",
                    (record_id, now + self.lease, now),
                )
                outcomes[record_id] = "taken" if cursor.rowcount else "held"
        return outcomes

    @guarded
    def done(self, record_ids: Sequence[str]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO claimed (record_id, at) VALUES (?, ?)",
                [(r, now) for r in record_ids],
            )
            db.executemany("DELETE FROM leases WHERE record_id = ?", [(r,) for r in record_ids])

    @guarded
    def release(self, record_ids: Sequence[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM leases WHERE record_id = ?", [(r,) for r in record_ids])

    @guarded
    def record_engagements(self, engagements: Sequence[Engagement]) -> int:
        rows = [
            (
                e.event_id,
                e.user_id,
                e.kind,
                e.ts,
                e.item_id,
                e.recommendation_id,
                e.campaign,
                e.value,
                e.event_type,
            )
            for e in engagements
        ]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO engagements (event_id, user_id, kind, ts, item_id, "
                "recommendation_id, campaign, value, event_type) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            return db.total_changes - before

    @guarded
    def history(self, since: float) -> tuple[Iterator[ServedList], Iterator[Engagement]]:
        self.flush()
        db = self.db
        served = db.execute(
            f"SELECT {_COLUMNS} FROM served WHERE served_at >= ? ORDER BY served_at", (since,)
        ).fetchall()
        engaged = db.execute(
            "SELECT event_id, user_id, kind, ts, item_id, recommendation_id, campaign, value, "
            "event_type FROM engagements WHERE ts >= ? ORDER BY ts",
            (since,),
        ).fetchall()
        return (_served(r) for r in served), (Engagement(*r) for r in engaged)

    @guarded
    def attribution(self, since: float, window_hours: float) -> Attribution:
        self.flush()
        return attribution_in(self.db, since, window_hours)
