"""What the lists did (SPEC section 11): lists served, impressions, clicks, click-through rate,
and purchases (with revenue) attributed to recommendation ids, per solution version and per
Braze campaign, the way Personalize's metric attributions report by event type and source.

The rules, over what the loop kept (`Loop.history`):
- a list is counted once per recommendation id it was served under;
- an impression or click counts for the list whose recommendation id it carries (email clicks
  carry it in the link, Content Card events were joined to the list at ingestion);
- a purchase counts for the latest click of the same user that came before it within the
  window (`RECS_ATTRIBUTION_WINDOW_HOURS`) on a list that held the item bought (or on that very
  item), once; its value is the revenue;
- click-through rate is clicks over impressions where Currents reported impressions (None
  otherwise); clicks per list is clicks over lists served.
Fallback lists have no solution version: they are reported as `fallback`.

`attribution_in` is the one computation (SQL, over the loop's two tables: the local loop runs it
on its own file, the `personalize` loop on a `Scratch` file it streams its table into),
`over_last_days` what the `attribution` command and the report both show, and `cells` the one
way their figures are written.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.vocabulary import Engagement, ServedList

NO_CAMPAIGN = "(no campaign)"
FALLBACK = "fallback"
DEFAULT_DAYS = 30.0
# The columns as the command's table heads them, and in full (the report's headers).
COLUMNS = (
    ("served", "lists served"),
    ("impr.", "impressions"),
    ("clicks", "clicks"),
    ("CTR", "click-through rate"),
    ("clk/list", "clicks per list"),
    ("purch.", "purchases"),
    ("revenue", "revenue"),
)
# A loop's attribution since a time (epoch seconds) with a window in hours: `Loop.attribution`.
Attribute = Callable[[float, float], "Attribution"]


@dataclass
class Figures:
    served: int = 0
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    revenue: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        ctr = self.clicks / self.impressions if self.impressions else None
        per_list = self.clicks / self.served if self.served else None
        conversion = self.purchases / self.clicks if self.clicks else None
        return {
            "served": self.served,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "ctr": None if ctr is None else round(ctr, 4),
            "clicks_per_list": None if per_list is None else round(per_list, 4),
            "purchases": self.purchases,
            "conversion": None if conversion is None else round(conversion, 4),
            "revenue": round(self.revenue, 2),
        }

    def cells(self) -> tuple[str, ...]:
        """The figures as the command and the report write them, in `COLUMNS`' order."""
        d = self.as_dict()

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}%"

        return (
            str(d["served"]),
            str(d["impressions"]),
            str(d["clicks"]),
            pct(d["ctr"]),
            pct(d["clicks_per_list"]),
            str(d["purchases"]),
            f"{d['revenue']:.2f}",
        )


@dataclass
class Attribution:
    window_hours: float
    days: float | None = None  # the look-back, when the history was read over one
    by_version: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_campaign: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    total: Figures = field(default_factory=Figures)
    engagements: int = 0  # Currents records read (impressions, clicks, purchases), counted or not

    def count(
        self,
        version: str | None,
        campaign: str | None,
        canvas_step: str | None,
        name: str,
        amount: float = 1,
    ) -> None:
        """Add `amount` to figure `name` of a version's, a campaign's and the total's."""
        groups = (
            self.by_version[version or FALLBACK],
            self.by_campaign[campaign or canvas_step or NO_CAMPAIGN],
            self.total,
        )
        for figures in groups:
            if name == "revenue":
                figures.revenue += amount
            else:
                setattr(figures, name, getattr(figures, name) + int(amount))

    def as_dict(self) -> dict[str, Any]:
        return {
            **({} if self.days is None else {"days": self.days}),
            "window_hours": self.window_hours,
            "by_solution_version": {k: v.as_dict() for k, v in sorted(self.by_version.items())},
            "by_campaign": {k: v.as_dict() for k, v in sorted(self.by_campaign.items())},
            "total": self.total.as_dict(),
        }


def over_last_days(
    attribution: Attribute, days: float, window_hours: float, now: float | None = None
) -> Attribution:
    """What the lists served in the last `days` did, from the loop's `attribution(since, ...)`."""
    since = (time.time() if now is None else now) - days * 86_400
    result = attribution(since, window_hours)
    result.days = days
    return result


# The rules above in SQL, over the tables `served` (recommendation_id unique; items a JSON array)
# and `engagements` (rowid in arrival order), the way loop.sqlite3 keeps them: the sums run
# inside SQLite, so a loop of a million lists is never read into Python (bench/attribution.py).
# Engagements are taken in the order (ts, rowid): a click and a purchase of the same second count
# in the order they arrived. A purchase's click is looked for by (user_id, kind, ts), the loop's
# `engagements_user` index; `p.ts <= c.ts + :window` is the rule as written, the range before it
# (a second wider) only lets the index narrow the search.
_SERVED = """
SELECT solution_version, campaign, canvas_step, COUNT(*) FROM served
WHERE served_at >= :since GROUP BY 1, 2, 3
"""
_SEEN = """
SELECT s.solution_version, s.campaign, s.canvas_step,
       SUM(e.kind = 'impression'), SUM(e.kind = 'click')
FROM engagements e JOIN served s ON s.recommendation_id = e.recommendation_id
WHERE e.ts >= :since AND e.kind IN ('impression', 'click') AND s.served_at >= :since
GROUP BY 1, 2, 3
"""
_PURCHASES = """
WITH found AS (
    SELECT p.rowid AS n, p.ts, p.event_id, p.value, (
        SELECT c.recommendation_id
        FROM engagements c JOIN served s ON s.recommendation_id = c.recommendation_id
        WHERE c.user_id = p.user_id AND c.kind = 'click'
          AND c.ts BETWEEN max(:since, p.ts - :window - 1) AND p.ts
          AND p.ts <= c.ts + :window AND (c.ts < p.ts OR c.rowid < p.rowid)
          AND s.served_at >= :since
          AND (c.item_id = p.item_id
               OR EXISTS (SELECT 1 FROM json_each(s.items) WHERE value = p.item_id))
        ORDER BY c.ts DESC, c.rowid DESC LIMIT 1
    ) AS rid
    FROM engagements p
    WHERE p.kind = 'purchase' AND p.ts >= :since AND p.item_id <> ''
), once AS (
    SELECT rid, ts, n, value,
           row_number() OVER (PARTITION BY rid, event_id ORDER BY ts, n) AS nth
    FROM found WHERE rid IS NOT NULL
)
SELECT s.solution_version, s.campaign, s.canvas_step, once.value
FROM once JOIN served s ON s.recommendation_id = once.rid
WHERE nth = 1 ORDER BY once.ts, once.n
"""
CLICKS_INDEX = "CREATE INDEX IF NOT EXISTS engagements_user ON engagements (user_id, kind, ts)"


def attribution_in(db: sqlite3.Connection, since: float, window_hours: float) -> Attribution:
    """The attribution of what `db`'s `served` and `engagements` hold since `since`."""
    result = Attribution(window_hours)
    args = {"since": since, "window": window_hours * 3600}
    for version, campaign, step, lists in db.execute(_SERVED, args):
        result.count(version, campaign, step, "served", lists)
    for version, campaign, step, impressions, clicks in db.execute(_SEEN, args):
        result.count(version, campaign, step, "impressions", impressions)
        result.count(version, campaign, step, "clicks", clicks)
    # One row per purchase credited, in the order they happened: revenue is added in that order
    # (a float sum depends on it), streamed from the cursor.
    for version, campaign, step, value in db.execute(_PURCHASES, args):
        result.count(version, campaign, step, "purchases")
        result.count(version, campaign, step, "revenue", value or 0.0)
    (result.engagements,) = db.execute(
        "SELECT COUNT(*) FROM engagements WHERE ts >= ?", (since,)
    ).fetchone()
    return result


_SCRATCH = f"""
CREATE TABLE served (
    recommendation_id TEXT PRIMARY KEY, solution_version TEXT, campaign TEXT,
    canvas_step TEXT, items TEXT NOT NULL, served_at REAL NOT NULL
);
CREATE TABLE engagements (
    event_id TEXT, user_id TEXT, kind TEXT, ts REAL, item_id TEXT, recommendation_id TEXT,
    value REAL
);
{CLICKS_INDEX};
"""
# A list served twice under one recommendation id counts once, as first served.
_ADD_SERVED = (
    "INSERT INTO served VALUES (?,?,?,?,?,?) ON CONFLICT (recommendation_id) DO UPDATE SET "
    "solution_version = excluded.solution_version, campaign = excluded.campaign, "
    "canvas_step = excluded.canvas_step, items = excluded.items, served_at = excluded.served_at "
    "WHERE excluded.served_at < served.served_at"
)
SCRATCH_BATCH = 5000


class Scratch:
    """A history read from elsewhere (DynamoDB's scan, a test's lists), put in a SQLite file of
    its own in a temporary directory for `attribution_in`: memory stays bounded by SQLite's page
    cache and `SCRATCH_BATCH` rows, whatever the history's size or order."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="attribution-")
        self.db = sqlite3.connect(Path(self._dir.name) / "history.sqlite3")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.executescript(_SCRATCH)
        self._served: list[tuple[Any, ...]] = []
        self._engaged: list[tuple[Any, ...]] = []

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *_: object) -> None:
        self.db.close()
        self._dir.cleanup()

    def served(self, s: ServedList) -> None:
        self._served.append(
            (
                s.recommendation_id,
                s.solution_version,
                s.campaign,
                s.canvas_step,
                json.dumps(list(s.item_ids)),
                s.served_at,
            )
        )
        if len(self._served) >= SCRATCH_BATCH:
            self._write()

    def engaged(self, e: Engagement) -> None:
        self._engaged.append(
            (e.event_id, e.user_id, e.kind, e.ts, e.item_id, e.recommendation_id, e.value)
        )
        if len(self._engaged) >= SCRATCH_BATCH:
            self._write()

    def _write(self) -> None:
        with self.db:
            self.db.executemany(_ADD_SERVED, self._served)
            self.db.executemany("INSERT INTO engagements VALUES (?,?,?,?,?,?,?)", self._engaged)
        self._served, self._engaged = [], []

    def attribution(self, since: float, window_hours: float) -> Attribution:
        self._write()
        return attribution_in(self.db, since, window_hours)


def attribute(
    served: Iterable[ServedList], engagements: Iterable[Engagement], window_hours: float
) -> Attribution:
    """The attribution of a history given whole (engagements in the order they arrived)."""
    with Scratch() as scratch:
        for s in served:
            scratch.served(s)
        for e in engagements:
            scratch.engaged(e)
        return scratch.attribution(-math.inf, window_hours)
