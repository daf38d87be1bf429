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

`over_last_days` is the one computation the `attribution` command and the report both show, and
`cells` the one way their figures are written.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
History = Callable[[float], tuple[Iterable[ServedList], Iterable[Engagement]]]


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

    def count(self, served: ServedList, name: str, amount: float = 1) -> None:
        version = served.solution_version or FALLBACK
        campaign = served.campaign or served.canvas_step or NO_CAMPAIGN
        for figures in (self.by_version[version], self.by_campaign[campaign], self.total):
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
    history: History, days: float, window_hours: float, now: float | None = None
) -> Attribution:
    """What the lists served in the last `days` did, from the loop's `history(since)`."""
    since = (time.time() if now is None else now) - days * 86_400
    served, engaged = history(since)
    result = attribute(served, engaged, window_hours)
    result.days = days
    return result


def attribute(
    served: Iterable[ServedList], engagements: Iterable[Engagement], window_hours: float
) -> Attribution:
    result = Attribution(window_hours)
    lists: dict[str, ServedList] = {}
    for s in served:
        if s.recommendation_id not in lists:
            lists[s.recommendation_id] = s
            result.count(s, "served")
    window = window_hours * 3600
    # user -> clicks on a known list, oldest first: (ts, list, items it vouches for)
    clicks: dict[str, list[tuple[float, ServedList, frozenset[str]]]] = defaultdict(list)
    credited: set[tuple[str, str]] = set()  # (recommendation id, purchase record): once
    for e in sorted(engagements, key=lambda e: e.ts):
        result.engagements += 1
        target = lists.get(e.recommendation_id or "")
        if e.kind == "impression" and target is not None:
            result.count(target, "impressions")
        elif e.kind == "click" and target is not None:
            result.count(target, "clicks")
            vouched = frozenset(target.item_ids) | ({e.item_id} if e.item_id else set())
            clicks[e.user_id].append((e.ts, target, vouched))
        elif e.kind == "purchase" and e.item_id:
            found = next(
                (
                    s
                    for ts, s, items in reversed(clicks.get(e.user_id, []))
                    if ts <= e.ts <= ts + window and e.item_id in items
                ),
                None,
            )
            if found is not None and (found.recommendation_id, e.event_id) not in credited:
                credited.add((found.recommendation_id, e.event_id))
                result.count(found, "purchases")
                result.count(found, "revenue", e.value or 0.0)
    return result
