"""The loop's commands: `attribution` (what the served lists did, from what Braze Currents
reported) and `segments` (the users most likely to engage with some items, pushed to Braze).
`replay-currents` lives with the other failures queue's command in `replay`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chalicelib.attribution import COLUMNS, DEFAULT_DAYS, over_last_days
from chalicelib.cli.output import fail, print_json
from chalicelib.seam import runtime
from chalicelib.segments import SegmentError


def cmd_attribution(args: argparse.Namespace) -> int:
    rt = runtime.current()
    result = over_last_days(rt.loop.attribution, args.days, rt.settings.attribution_window_hours)
    if args.json:
        print_json(result.as_dict())
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
        print(_row(title, tuple(short for short, _ in COLUMNS)))
        for name, figures in sorted(groups.items()):
            print(_row(name, figures.cells()))
    print(_row("total", result.total.cells()))
    return 0


def _row(name: str, cells: tuple[str, ...]) -> str:
    # A campaign's name is whoever edits the campaign's: its control characters are shown, not
    # sent to the terminal (an escape sequence could clear the screen or recolour the figures).
    name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    shown = name if len(name) <= 40 else "…" + name[-39:]
    return f"  {shown:40s}" + "".join(f"{c:>10s}" for c in cells)


def look_back(text: str) -> float:
    """`--days`: a finite number of days above 0 (argparse says it in one line otherwise)."""
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not 0 < days < float("inf"):
        raise argparse.ArgumentTypeError(f"takes a number of days above 0, not {text!r}")
    return days


def cmd_segments(args: argparse.Namespace) -> int:
    """The users most likely to engage with some items, pushed to Braze as a custom attribute
    (`--name`, true for the segment's members; removed from users who left it)."""
    from chalicelib import braze  # noqa: PLC0415

    rt = runtime.current()
    settings = rt.settings
    given = [i.strip() for i in args.items.split(",") if i.strip()] if args.items else None
    try:
        if given is not None and not given:
            raise SegmentError("--items names no item")
        items, users = rt.workflow.segment(given, args.attribute, args.top)
        out: dict[str, Any] = {
            "items": len(items),
            "users": [{"user_id": u, "affinity": a} for u, a in users],
        }
        if not args.dry_run:
            client = braze.BrazeClient(settings.braze_rest_endpoint, settings.braze_api_key)
            state_path = Path(args.state) if args.state else settings.data_dir / "braze-push.sqlite"
            state = braze.PushState(state_path, f"{client.url} segment {args.name}")
            pusher = braze.Pusher(
                client,
                state,
                args.name,
                braze.catalogue_decorator(rt.serving.catalogue()),
                batch_size=settings.braze_batch_size,
                pacer=braze.Pacer(settings.braze_requests_per_second),
            )
            try:
                members = {u for u, _ in users}
                leavers = sorted(state.holding(braze.value_hash(True)) - members)
                values = [(u, True) for u, _ in users] + [(u, None) for u in leavers]
                out["braze"] = {"attribute": args.name, **pusher.push(values).as_dict()}
            finally:
                state.close()
    except braze.BrazeError as exc:  # not a ValueError: said here (the rest by `main`)
        return fail(args, exc)
    print_json(out)
    return 0 if not out.get("braze", {}).get("failed") else 1


def add_commands(sub: Any) -> None:
    s = sub.add_parser(
        "attribution",
        help="lists served, impressions, clicks, CTR, purchases and revenue per solution "
        "version and Braze campaign",
    )
    s.add_argument("--days", type=look_back, default=DEFAULT_DAYS, help="look back this many days")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_attribution)

    s = sub.add_parser(
        "segments",
        help="the users most likely to engage with some items, pushed to Braze as an attribute",
    )
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--items", help="comma-separated item ids (Item-Affinity)")
    which.add_argument(
        "--attribute",
        help="an item-attribute expression, e.g. 'ITEMS.CATEGORY = \"toys\"' "
        "(Item-Attribute-Affinity)",
    )
    s.add_argument("--top", type=int, default=1000, help="how many users (default 1000)")
    s.add_argument("--name", default="recs_segment", help="the Braze custom attribute set to true")
    s.add_argument("--state", help="the state file (default: RECS_DATA_DIR/braze-push.sqlite)")
    s.add_argument("--dry-run", action="store_true", help="print the segment, push nothing")
    s.set_defaults(func=cmd_segments)
