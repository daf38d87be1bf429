"""The loop's commands: `attribution` (what the served lists did, from what Braze Currents
reported) and `segments` (the users most likely to engage with some items, pushed to Braze)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from chalicelib.attribution import Figures, attribute
from chalicelib.cli.output import print_json
from chalicelib.seam import runtime


def cmd_attribution(args: argparse.Namespace) -> int:
    rt = runtime.current()
    since = time.time() - args.days * 86_400
    served, engaged = rt.loop.history(since)
    result = attribute(served, engaged, rt.settings.attribution_window_hours)
    if args.json:
        print_json({"days": args.days, **result.as_dict()})
        return 0
    print(
        f"Last {args.days:g} days; purchases within {result.window_hours:g} h of a click "
        "on a list that held the item"
    )
    for title, groups in (
        ("solution version", result.by_version),
        ("Braze campaign", result.by_campaign),
    ):
        print(f"\nby {title}")
        print(_row(title, _HEAD))
        for name, figures in sorted(groups.items()):
            print(_row(name, _cells(figures)))
    print(_row("total", _cells(result.total)))
    return 0


_HEAD = ("served", "impr.", "clicks", "CTR", "clk/list", "purch.", "revenue")


def _cells(figures: Figures) -> tuple[str, ...]:
    d = figures.as_dict()

    def pct(value: Any) -> str:
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


def _row(name: str, cells: tuple[str, ...]) -> str:
    shown = name if len(name) <= 40 else "…" + name[-39:]
    return f"  {shown:40s}" + "".join(f"{c:>10s}" for c in cells)


def add_commands(sub: Any) -> None:
    s = sub.add_parser(
        "attribution",
        help="lists served, impressions, clicks, CTR, purchases and revenue per solution "
        "version and Braze campaign",
    )
    s.add_argument("--days", type=float, default=30.0, help="look back this many days")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_attribution)
