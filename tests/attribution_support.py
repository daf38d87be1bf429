"""A generated Braze loop history whose click and purchase rates are known (served lists,
Currents impressions, clicks and purchases), for the attribution command and the report, with
campaign names chosen by someone hostile."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from chalicelib.attribution import Attribution
from chalicelib.seam import runtime
from chalicelib.vocabulary import Engagement, ServedList

NOW = time.time() - 3 * 86_400  # three days ago: inside the default 30-day look-back
HOUR = 3600.0


def history(
    version: str | None,
    campaign: str | None,
    lists: int,
    *,
    ctr: float,
    conversion: float,
    price: float,
) -> tuple[list[ServedList], list[Engagement]]:
    """`lists` lists of 4 items, each shown once (when a campaign shows cards), a click on every
    1/ctr-th, and a purchase of the clicked item an hour later on every 1/conversion-th click."""
    served, engaged = [], []
    tag = version or "fb"
    clicks = 0
    for n in range(lists):
        user, rid, at = f"{tag}-u{n}", f"{tag}-r{n}", NOW + n
        items = [f"{tag}-i{n}-{k}" for k in range(4)]
        served.append(
            ServedList(rid, user, items, "recommendations", "personalized", at, version, campaign)
        )
        if campaign:
            engaged.append(
                Engagement(f"{rid}-imp", user, "impression", at + 1, None, rid, campaign)
            )
        if n % round(1 / ctr) == 0:
            clicks += 1
            engaged.append(Engagement(f"{rid}-clk", user, "click", at + 2, items[1], rid, campaign))
            if (clicks - 1) % round(1 / conversion) == 0:
                engaged.append(
                    Engagement(f"{rid}-buy", user, "purchase", at + HOUR, items[1], value=price)
                )
    return served, engaged


def shop() -> tuple[list[ServedList], list[Engagement]]:
    served, engaged = [], []
    for version, campaign, lists, ctr, conversion, price in (
        ("v1", "cmp-A", 400, 0.10, 0.25, 20.0),
        ("v2", "cmp-B", 200, 0.20, 0.5, 5.0),
        (None, None, 100, 0.05, 1.0, 0.0),
    ):
        s, e = history(version, campaign, lists, ctr=ctr, conversion=conversion, price=price)
        served += s
        engaged += e
    # What must not count: a purchase a day and a half after the click, one of an item the
    # list did not hold, one before the click, one of a user who never clicked, a click on a
    # list nobody served, and the same impression twice.
    engaged += [
        Engagement("late", "v1-u0", "purchase", NOW + 36 * HOUR, "v1-i0-1", value=99.0),
        Engagement("other", "v1-u10", "purchase", NOW + 10 + HOUR, "elsewhere", value=99.0),
        Engagement("early", "v1-u20", "purchase", NOW + 19, "v1-i20-1", value=99.0),
        Engagement("stranger", "v1-u1", "purchase", NOW + 1 + HOUR, "v1-i1-1", value=99.0),
        Engagement("ghost", "v1-u3", "click", NOW + 5, "x", "nobody-served-this", "cmp-A"),
    ]
    return served, engaged


# Campaign names as anyone who can edit a Braze campaign (or its Connected Content URL) may
# choose them: markup, an attribute break-out, a link to elsewhere, a terminal escape.
HOSTILE = (
    '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>',
    '"><a id=evil href="https://evil.example/">click</a><b title=\'',
    "</table></section><h1 id=forged>forged</h1>\x1b[2J\x1b[31mred & bold",
)


def hostile_shop() -> tuple[list[ServedList], list[Engagement]]:
    """`shop()` and a version whose lists were served to the hostile campaigns."""
    served, engaged = shop()
    for n, campaign in enumerate(HOSTILE):
        s, e = history(f"v3-{n}", campaign, 20, ctr=0.25, conversion=0.5, price=7.5)
        served += s
        engaged += e
    return served, engaged


def keep(served: Sequence[ServedList], engaged: Sequence[Engagement]) -> None:
    """Into the current provider's loop, as serving and `import currents` keep them."""
    loop = runtime.current().loop
    for s in served:
        loop.record_served(s)
    loop.record_engagements(engaged)


def generated(
    lists: int,
    *,
    items: int = 4,
    window_hours: float = 24.0,
    start: float = NOW,
    spacing: float = 60.0,
) -> Iterator[ServedList | Engagement]:
    """A loop of `lists` lists (a multiple of 200) and what users did with them, in the order
    Currents would deliver it, at rates `generated_totals` states: an impression on 4 lists in 5,
    a click on 1 in 10 and a second click on 1 in 40, a purchase of the clicked item an hour
    later on 1 in 20, one a window and an hour late on 1 in 20 (never counted), one in the very
    second of the click on 1 in 200 (counted: it came after the click), one in the second of a
    click it came before on 1 in 200 (never counted), a click under an id nobody served on 1 in
    100; versions, Braze campaigns, Canvas steps and fallback lists in turn; a list every
    `spacing` seconds from `start`."""
    users = max(1, lists // 4)
    window = window_hours * HOUR
    for n in range(lists):
        user, rid, at = f"u{n % users}", f"r{n}", start + spacing * n
        version = None if n % 10 == 9 else f"v{n % 3}"
        campaign = None if n % 6 == 5 else f"cmp-{n % 4}"
        step = f"step-{n % 5}" if n % 6 == 5 and n % 12 != 11 else None
        shown = [f"i{n}-{k}" for k in range(items)]
        route, source = "recommendations", "personalized"
        yield ServedList(rid, user, shown, route, source, at, version, campaign, step)
        if n % 5 != 4:
            yield Engagement(f"{rid}-imp", user, "impression", at + 1, None, rid, campaign)
        price = 5.0 + (n % 7) * 0.35
        click = at + 2
        if n % 200 == 100:  # bought in the second of the click, but before it arrived
            yield Engagement(f"{rid}-tie-", user, "purchase", click, shown[2], value=price)
        if n % 10 == 0:
            yield Engagement(f"{rid}-clk", user, "click", click, shown[1], rid, campaign)
        if n % 40 == 0:
            yield Engagement(f"{rid}-clk2", user, "click", click + 30, shown[0], rid, campaign)
        if n % 200 == 0:  # bought in the second of the click, after it
            yield Engagement(f"{rid}-tie+", user, "purchase", click, shown[2], value=price)
        if n % 100 == 50:
            yield Engagement(f"{rid}-ghost", user, "click", click, shown[0], f"x{rid}", campaign)
        if n % 20 == 0:
            yield Engagement(f"{rid}-buy", user, "purchase", click + HOUR, shown[1], value=price)
        if n % 20 == 10:
            late = click + window + HOUR
            yield Engagement(f"{rid}-late", user, "purchase", late, shown[1], value=price)


def generated_totals(lists: int) -> dict[str, int]:
    """The totals `generated(lists)` must come to, by its rates."""
    return {
        "served": lists,
        "impressions": lists * 4 // 5,
        "clicks": lists // 10 + lists // 40,
        "purchases": lists // 20 + lists // 200,
    }


def reference_attribute(
    served: Iterable[ServedList], engagements: Iterable[Engagement], window_hours: float
) -> Attribution:
    """The computation as it was before it moved into SQLite (a pass in Python over the whole
    history), kept as the peer the SQL must match exactly and the benchmark's "before"."""
    result = Attribution(window_hours)

    def count(s: ServedList, name: str, amount: float = 1) -> None:
        result.count(s.solution_version, s.campaign, s.canvas_step, name, amount)

    lists: dict[str, ServedList] = {}
    for s in served:
        if s.recommendation_id not in lists:
            lists[s.recommendation_id] = s
            count(s, "served")
    window = window_hours * 3600
    # user -> clicks on a known list, oldest first: (ts, list, items it vouches for)
    clicks: dict[str, list[tuple[float, ServedList, frozenset[str]]]] = defaultdict(list)
    credited: set[tuple[str, str]] = set()  # (recommendation id, purchase record): once
    for e in sorted(engagements, key=lambda e: e.ts):
        result.engagements += 1
        target = lists.get(e.recommendation_id or "")
        if e.kind == "impression" and target is not None:
            count(target, "impressions")
        elif e.kind == "click" and target is not None:
            count(target, "clicks")
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
                count(found, "purchases")
                count(found, "revenue", e.value or 0.0)
    return result
