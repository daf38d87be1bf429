"""`python -m chalicelib report [--output report.html]`: the evaluation report of the stored
solution versions and what the served lists did (the page is `chalicelib.report`), on either
provider. The per-k, per-history and popularity plots need the evaluation detail the local engine
records at train; the peers come from the engine benchmark's results file (`bench/engine.py
--json`) when present; the attribution is `attribution --days N`'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chalicelib.attribution import DEFAULT_DAYS, over_last_days
from chalicelib.cli.loop import look_back
from chalicelib.report.sources import DEFAULT_LIMIT, PEERS_FILE, newest, read_peers
from chalicelib.seam import runtime


def cmd_report(args: argparse.Namespace) -> int:
    from chalicelib.report.build import render  # noqa: PLC0415

    rt = runtime.current()
    shown = newest(rt.workflow.versions(args.solution), args.limit)
    campaigns = rt.serving.health().get("campaigns")
    peers_path = Path(args.peers) if args.peers else rt.settings.data_dir / PEERS_FILE
    peers, problem = read_peers(peers_path)
    if problem:
        print(problem, file=sys.stderr)
    online = over_last_days(rt.loop.attribution, args.days, rt.settings.attribution_window_hours)
    html = render(
        shown,
        campaigns if isinstance(campaigns, dict) else {},
        peers,
        peers_source=str(peers_path),
        provider=rt.settings.provider,
        attribution=online,
    )
    output = Path(args.output)
    output.write_text(html, encoding="utf-8")
    solutions = len({info.solution for info in shown})
    print(
        f"{output}: {len(shown)} solution version(s) of {solutions} solution(s); "
        f"{online.total.served} list(s) served in the last {args.days:g} days"
    )
    return 0


def add_command(sub: Any) -> None:
    s = sub.add_parser("report", help="HTML evaluation report of the stored solution versions")
    s.add_argument("--output", default="report.html", help="where to write it (report.html)")
    s.add_argument("--solution", help="only this solution's versions")
    s.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="newest versions per solution")
    s.add_argument("--peers", help="engine benchmark results (RECS_DATA_DIR/bench-engine.json)")
    s.add_argument(
        "--days", type=look_back, default=DEFAULT_DAYS,
        help="attribution: the lists served in the last N days (as `attribution --days N`)",
    )  # fmt: skip
    s.set_defaults(func=cmd_report)
