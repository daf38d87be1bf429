"""A generated Braze loop history whose click and purchase rates are known (served lists,
Currents impressions, clicks and purchases), for the attribution command and the report, with
campaign names chosen by someone hostile."""

from __future__ import annotations

import time
from collections.abc import Sequence

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
