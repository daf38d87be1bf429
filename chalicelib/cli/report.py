"""`python -m chalicelib report [--output report.html]`: the evaluation report of the stored
solution versions (the page is `chalicelib.report`), on either provider. The per-k, per-history
and popularity plots need the evaluation detail the local engine records at train; the peers come
from the engine benchmark's results file (`bench/engine.py --json`) when present.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.seam import runtime

DEFAULT_LIMIT = 6


def _peers(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(
            f"benchmark results at {path} not read ({exc}); the report leaves peers out",
            file=sys.stderr,
        )
        return None
    return loaded if isinstance(loaded, dict) else None


def cmd_report(args: argparse.Namespace) -> int:
    from chalicelib.report.build import render  # noqa: PLC0415

    rt = runtime.current()
    versions = rt.workflow.versions(args.solution)
    kept: dict[str, int] = {}
    shown = []
    for info in versions:  # newest first: the latest `limit` of each solution
        kept[info.solution] = kept.get(info.solution, 0) + 1
        if kept[info.solution] <= args.limit:
            shown.append(info)
    campaigns = rt.serving.health().get("campaigns")
    peers_path = Path(args.peers) if args.peers else rt.settings.data_dir / "bench-engine.json"
    html = render(
        shown,
        campaigns if isinstance(campaigns, dict) else {},
        _peers(peers_path),
        peers_source=str(peers_path),
        provider=rt.settings.provider,
    )
    output = Path(args.output)
    output.write_text(html, encoding="utf-8")
    print(f"{output}: {len(shown)} solution version(s) of {len(kept)} solution(s)")
    return 0


def add_command(sub: Any) -> None:
    s = sub.add_parser("report", help="HTML evaluation report of the stored solution versions")
    s.add_argument("--output", default="report.html", help="where to write it (report.html)")
    s.add_argument("--solution", help="only this solution's versions")
    s.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="newest versions per solution")
    s.add_argument("--peers", help="engine benchmark results (RECS_DATA_DIR/bench-engine.json)")
    s.set_defaults(func=cmd_report)
