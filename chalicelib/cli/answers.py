"""The commands that give recommendations: `recommend` (one user, decorated, through the same
fallback policy as the API), `batch` (Personalize's batch-inference JSON lines) and `braze-push`
(a batch output sent to Braze)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chalicelib.batchfile import parse_filter_values, summarize
from chalicelib.cli.output import fail, print_json
from chalicelib.cli.progress import progress_bar
from chalicelib.filters import FilterRequest, MissingFilterValueError
from chalicelib.filters.values import values_from_query
from chalicelib.seam import fallback, runtime


def cmd_recommend(args: argparse.Namespace) -> int:
    rt = runtime.current()
    values = values_from_query(parse_filter_values(args.filter_value or []))
    flt = FilterRequest(args.filter, values) if args.filter else None
    try:
        recs = fallback.recommend(rt.serving, args.user_id, args.num_results, flt)
    except MissingFilterValueError as exc:  # the API names its query parameter; here, the option
        return fail(args, exc.given_as(f"--filter-value {exc.placeholder}=VALUE"))
    items = json.loads(rt.serving.catalogue().render(recs.item_ids, args.num_results))
    print_json({"source": recs.source, "items": items})
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Batch inference in Personalize's JSON-lines formats, then a summary of the output."""
    rt = runtime.current()
    values = parse_filter_values(args.filter_value or [])
    if values and not args.filter:
        return fail(args, "--filter-value needs --filter")
    flt = FilterRequest(args.filter, values) if args.filter else None
    with progress_bar() as report:
        result = rt.workflow.batch(
            Path(args.input),
            Path(args.output),
            args.num_results,
            solution=args.solution,
            flt=flt,
            progress=report,
        )
    catalogue_items = len(rt.serving.catalogue()) or None
    summary = summarize(Path(args.output), catalogue_items)
    print_json({"input": args.input, "output": args.output, **summary.as_dict()})
    return 0 if summary.errors == 0 and result.lines == summary.lines else 1


def cmd_braze_push(args: argparse.Namespace) -> int:
    """Send each user's batch recommendations to Braze as a custom attribute (changed ones only)."""
    from chalicelib import braze  # noqa: PLC0415

    rt = runtime.current()
    settings = rt.settings
    state_path = Path(args.state) if args.state else settings.data_dir / "braze-push.sqlite"
    try:
        client = braze.BrazeClient(settings.braze_rest_endpoint, settings.braze_api_key)
        state = braze.PushState(state_path, f"{client.url} {settings.braze_attribute}")
        pusher = braze.Pusher(
            client,
            state,
            settings.braze_attribute,
            braze.catalogue_decorator(rt.serving.catalogue()),
            batch_size=args.batch_size or settings.braze_batch_size,
            pacer=braze.Pacer(args.rate or settings.braze_requests_per_second),
        )
        try:
            report = pusher.run(Path(args.input))
        finally:
            state.close()
    except braze.BrazeError as exc:  # not a ValueError: said here (the rest by `main`)
        return fail(args, exc)
    print_json({"input": args.input, "attribute": settings.braze_attribute, **report.as_dict()})
    return 0 if report.failed == 0 else 1


def add_commands(sub: Any) -> None:
    s = sub.add_parser("recommend", help="recommendations for one user, decorated")
    s.add_argument("user_id")
    s.add_argument("--num-results", type=int, default=25)
    s.add_argument("--filter")
    s.add_argument(
        "--filter-value", action="append", metavar="NAME=VALUE",
        help="a value of the filter's $NAME (repeatable, or comma-separated)",
    )  # fmt: skip
    s.set_defaults(func=cmd_recommend)

    s = sub.add_parser("batch", help="batch recommendations, Personalize JSON-lines formats")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--num-results", type=int, default=25, help="1-500 (numResults)")
    s.add_argument("--solution", help="the solution whose version answers (default: campaigns')")
    s.add_argument("--filter", help="a filter of the configuration, e.g. exclude-purchased")
    s.add_argument(
        "--filter-value", action="append", metavar="NAME=VALUE",
        help="a value of the filter's $NAME for lines without their own (repeatable)",
    )  # fmt: skip
    s.set_defaults(func=cmd_batch)

    s = sub.add_parser("braze-push", help="push batch recommendations to Braze /users/track")
    s.add_argument("input", help="a batch output file (recs.jsonl)")
    s.add_argument("--state", help="the state file (default: RECS_DATA_DIR/braze-push.sqlite)")
    s.add_argument("--batch-size", type=int, help="users per request, 1-75 (RECS_BRAZE_BATCH_SIZE)")
    s.add_argument("--rate", type=float, help="requests/s (RECS_BRAZE_REQUESTS_PER_SECOND)")
    s.set_defaults(func=cmd_braze_push)
