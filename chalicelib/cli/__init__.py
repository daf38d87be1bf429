"""The command line: `python -m chalicelib {import,train,metrics,versions,deploy,recommend,batch,
braze-push,setup,popular,catalogue,serve}`.

Commands run against the provider of the current `RECS_*` environment (default: `local`), the same
code the Lambda functions run. `serve` (in `chalicelib.cli.serve`) is what `make run` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.cli import serve
from chalicelib.cli.progress import progress_bar
from chalicelib.seam import runtime


def _print(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_import(args: argparse.Namespace) -> int:
    """A local path or s3:// URI, on either provider: on `local` the rows load into the store;
    on `personalize` the file is validated and imported exactly as `import_s3` does (a local file
    is first uploaded under s3://RECS_IMPORT_BUCKET/imports/<dataset>/)."""
    rt = runtime.current()
    if rt.provider.name == "personalize":
        return _import_on_aws(args, rt)
    with tempfile.TemporaryDirectory() as tmp, progress_bar() as report:
        path = Path(args.path)
        if args.path.startswith("s3://"):
            bucket, _, key = args.path.removeprefix("s3://").partition("/")
            path = Path(tmp) / key.rsplit("/", 1)[-1]
            aws.client("s3").download_file(bucket, key, str(path))
        result = rt.provider.import_file(args.dataset, path, args.mode, report)
    _print(asdict(result))
    return 0 if result.status == "imported" else 1


def _import_on_aws(args: argparse.Namespace, rt: runtime.Runtime) -> int:
    from chalicelib.providers.personalize import imports  # noqa: PLC0415

    if args.path.startswith("s3://"):
        bucket, _, key = args.path.removeprefix("s3://").partition("/")
    else:
        bucket = rt.settings.import_bucket
        if not bucket:
            print("RECS_IMPORT_BUCKET is not set", file=sys.stderr)
            return 2
        try:
            key = imports.upload(bucket, args.dataset, Path(args.path))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    if imports.dataset_of(key) != args.dataset:
        print(
            f"s3://{bucket}/{key} is not a .csv[.gz] under imports/{args.dataset}/", file=sys.stderr
        )
        return 2
    with progress_bar() as report:
        result = imports.import_object(
            bucket, key, rt.settings, rt.config, mode=args.mode, progress=report
        )
    _print(asdict(result))
    return 0 if result.status in ("started", "duplicate") else 1


def cmd_train(args: argparse.Namespace) -> int:
    provider = runtime.current().provider
    try:
        with progress_bar() as report:
            infos = provider.train(args.solution, report)
    except ValueError as exc:  # too little data, bad hyperparameters: say which, no traceback
        print(f"training failed: {exc}", file=sys.stderr)
        return 2
    for info in infos:
        print(f"{info.version_id}: {info.training_seconds:.1f} s, {dict(info.counts)}")
        for line in _chosen(info.params):
            print(f"  {line}")
        for name, value in info.metrics.items():
            print(f"  {name:48s} {value:.4f}")
    return 0


def _chosen(params: Mapping[str, Any]) -> list[str]:
    """Knobs chosen at train (on validation users, by auto_tune or performHPO), as lines."""
    lines = []
    if isinstance(auto := params.get("chosen"), Mapping):
        knobs = ", ".join(f"{k}={v}" for k, v in auto.get("chosen", {}).items())
        before, after = (auto.get(f"validation_ndcg_at_10_{k}") for k in ("defaults", "chosen"))
        users = auto.get("validation_users")
        lines.append(f"chosen on {users} validation users: {knobs} (NDCG@10 {before} -> {after})")
    if isinstance(hpo := params.get("hpo"), Mapping):
        knobs = ", ".join(f"{k}={v}" for k, v in hpo.get("best", {}).items())
        lines.append(f"performHPO ({hpo.get('trials')} trials) chose {knobs}")
    return lines


def cmd_metrics(args: argparse.Namespace) -> int:
    info = runtime.current().provider.metrics(args.solution, args.version)
    if info is None:
        print("no solution version yet: run `python -m chalicelib train`", file=sys.stderr)
        return 1
    if args.json:
        _print({"solutionVersionArn": info.version_id, "metrics": dict(info.metrics)})
    else:
        print(info.version_id)
        for name, value in info.metrics.items():
            print(f"  {name:48s} {value:.4f}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    infos = runtime.current().provider.versions(args.solution)
    if args.json:
        _print([asdict(info) for info in infos])
        return 0
    for info in infos:
        ndcg = info.metrics.get("normalized_discounted_cumulative_gain_at_10", float("nan"))
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.created))
        print(f"{info.version_id}  {created}  NDCG@10 {ndcg:.4f}  {dict(info.counts)}")
        for line in _chosen(info.params):
            print(f"  {line}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    provider = runtime.current().provider
    version = args.version
    if version is None:
        conf = runtime.current().config.campaigns.get(args.campaign)
        latest = provider.versions(conf.solution) if conf else []
        if not latest:
            print(f"no solution version to deploy to {args.campaign!r}", file=sys.stderr)
            return 2
        version = latest[0].version_id
    try:
        provider.deploy(args.campaign, version)
    except ValueError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 2
    print(f"{args.campaign} now serves {version}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    rt = runtime.current()
    from chalicelib.batchfile import parse_filter_values  # noqa: PLC0415
    from chalicelib.filters import FilterError, FilterRequest  # noqa: PLC0415
    from chalicelib.filters.values import values_from_query  # noqa: PLC0415

    try:
        values = values_from_query(parse_filter_values(args.filter_value or []))
        flt = FilterRequest(args.filter, values) if args.filter else None
        recs = rt.provider.recommend(args.user_id, args.num_results, flt)
    except (ValueError, FilterError) as exc:  # a bad or missing filter value: say which
        print(f"recommend failed: {exc}", file=sys.stderr)
        return 2
    items = json.loads(rt.provider.catalogue().render(recs.item_ids, args.num_results))
    _print({"source": recs.source, "items": items})
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Batch inference in Personalize's JSON-lines formats, then a summary of the output."""
    from chalicelib.batchfile import parse_filter_values, summarize  # noqa: PLC0415
    from chalicelib.filters import FilterRequest  # noqa: PLC0415
    from chalicelib.vocabulary import ProviderError  # noqa: PLC0415

    provider = runtime.current().provider
    try:
        values = parse_filter_values(args.filter_value or [])
        if values and not args.filter:
            raise ValueError("--filter-value needs --filter")
        flt = FilterRequest(args.filter, values) if args.filter else None
        with progress_bar() as report:
            result = provider.batch(
                Path(args.input),
                Path(args.output),
                args.num_results,
                solution=args.solution,
                flt=flt,
                progress=report,
            )
    except (ValueError, ProviderError, OSError) as exc:
        print(f"batch failed: {exc}", file=sys.stderr)
        return 2
    try:
        catalogue_items: int | None = len(provider.catalogue())  # type: ignore[arg-type]
    except TypeError:  # a catalogue read on demand (DynamoDB) has no size
        catalogue_items = None
    summary = summarize(Path(args.output), catalogue_items or None)
    _print({"input": args.input, "output": args.output, **summary.as_dict()})
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
            braze.catalogue_decorator(rt.provider.catalogue()),
            batch_size=args.batch_size or settings.braze_batch_size,
            pacer=braze.Pacer(args.rate or settings.braze_requests_per_second),
        )
        try:
            report = pusher.run(Path(args.input))
        finally:
            state.close()
    except (braze.BrazeError, OSError) as exc:
        print(f"braze-push failed: {exc}", file=sys.stderr)
        return 2
    _print({"input": args.input, "attribute": settings.braze_attribute, **report.as_dict()})
    return 0 if report.failed == 0 else 1


def cmd_setup(args: argparse.Namespace) -> int:
    """Apply the configuration: Personalize resources on AWS; on `local`, a checked config."""
    from chalicelib.config import ConfigError  # noqa: PLC0415
    from chalicelib.filters import FilterError  # noqa: PLC0415

    try:
        rt = runtime.current()
    except (ConfigError, FilterError) as exc:  # a bad file or filter expression: say where
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    if rt.provider.name != "personalize":
        # Building the local provider validated the file and compiled every filter.
        print(f"{rt.settings.config}: valid for the local provider")
        print(f"  solutions: {', '.join(s.name for s in rt.config.solutions)}")
        print(f"  campaigns: {', '.join(rt.config.campaigns)}")
        print(f"  filters:   {', '.join(rt.config.filters) or '-'}")
        return 0
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from chalicelib.filters.language import check_all  # noqa: PLC0415
    from chalicelib.providers.personalize.setup import setup  # noqa: PLC0415
    from chalicelib.vocabulary import ProviderError  # noqa: PLC0415

    try:  # the grammar refuses a bad expression, with its position, before any AWS call
        check_all(dict(rt.config.filters))
    except FilterError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2

    try:
        with progress_bar() as report:
            result = setup(rt.config, report, poll_seconds=args.poll_seconds, dry_run=args.dry_run)
    except (ClientError, BotoCoreError, ProviderError) as exc:
        # Personalize's own message names the problem (a bad filter expression, a quota).
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    if args.json:
        _print(result.as_dict())
    else:
        for step in result.steps:
            line = f"{step.action:8s} {step.kind:14s} {step.name}"
            print(line + (f"  ({step.detail})" if step.detail else ""))
        print("\nStage settings (.chalice/config.json environment_variables):")
        for key, value in result.settings.items():
            print(f'  "{key}": "{value}",')
    return 0


def cmd_popular(args: argparse.Namespace) -> int:
    """The fallback list: the most interacted-with items of an interactions file (optionally
    only its last `--days`), stored in the item table on AWS."""
    from collections import Counter  # noqa: PLC0415

    from chalicelib.csvdata import Validation, read_rows  # noqa: PLC0415

    path = Path(args.input)
    since = float("-inf")
    if args.days:  # relative to the file's newest event, so that old exports work too
        newest = max((row[4] for row in read_rows(path, "interactions", Validation())), default=0)
        since = newest - args.days * 86_400
    counts: Counter[str] = Counter(
        row[1] for row in read_rows(path, "interactions", Validation()) if row[4] >= since
    )
    top = [item for item, _ in counts.most_common(args.top)]
    rt = runtime.current()
    if rt.provider.name == "personalize" and rt.settings.items_table:
        from chalicelib.providers.personalize import items_table  # noqa: PLC0415

        items_table.put_popular(rt.settings.items_table, top)
        print(f"{len(top)} popular items stored in {rt.settings.items_table}", file=sys.stderr)
    _print(top)
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Load an items file into the item table that decorates responses on AWS."""
    from chalicelib.csvdata import Validation, read_rows  # noqa: PLC0415
    from chalicelib.providers.personalize import items_table  # noqa: PLC0415

    table = runtime.current().settings.items_table
    if not table:
        print("RECS_ITEMS_TABLE is not set", file=sys.stderr)
        return 2
    validation = Validation()
    loaded = items_table.load_items(table, read_rows(Path(args.path), "items", validation))
    _print({"table": table, "loaded": loaded, "errors": validation.errors})
    return 0 if not validation.error_count else 1


def _setup_commands(sub: Any) -> None:
    """`setup`, `popular` and `catalogue`: the configuration and the fallback data on AWS."""
    s = sub.add_parser("setup", help="apply the configuration (Personalize resources on AWS)")
    s.add_argument("--config", help="the configuration file (default: RECS_CONFIG, recs.toml)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--poll-seconds", type=float, default=15.0)
    s.add_argument(
        "--dry-run", action="store_true", help="report what would be created or updated, do nothing"
    )
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("popular", help="compute (and on AWS store) the fallback popular list")
    s.add_argument("--input", required=True, help="an interactions CSV (.csv or .csv.gz)")
    s.add_argument("--top", type=int, default=500)
    s.add_argument("--days", type=float, help="only the file's last N days")
    s.set_defaults(func=cmd_popular)

    s = sub.add_parser("catalogue", help="load an items CSV into RECS_ITEMS_TABLE (AWS)")
    s.add_argument("path")
    s.set_defaults(func=cmd_catalogue)


bootstrap = serve.bootstrap


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chalicelib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("import", help="validate a CSV file and load it as a dataset")
    s.add_argument("dataset", choices=["interactions", "users", "items"])
    s.add_argument("path", help="a CSV (.csv or .csv.gz) file or an s3://bucket/key URI")
    s.add_argument("--mode", choices=["full", "incremental"], default="incremental")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("train", help="train new solution versions and deploy them")
    s.add_argument("--solution", help="only this solution (default: all in the configuration)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("metrics", help="offline metrics of the served solution version")
    s.add_argument("--solution", help="its latest version (default: the served version)")
    s.add_argument("--version", help="this solution version")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_metrics)

    s = sub.add_parser("versions", help="stored solution versions, newest first")
    s.add_argument("--solution")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_versions)

    s = sub.add_parser("deploy", help="make a campaign serve a solution version")
    s.add_argument("campaign", choices=["recommendations", "related-items", "rankings"])
    s.add_argument("--version", help="a version id (default: the solution's latest)")
    s.set_defaults(func=cmd_deploy)

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

    _setup_commands(sub)

    serve.add_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "config", None):
        return int(args.func(args))
    # The same file drives either provider; restored afterwards so that an in-process caller
    # (a test, a notebook) does not keep this configuration for what it runs next.
    previous = os.environ.get("RECS_CONFIG")
    os.environ["RECS_CONFIG"] = str(Path(args.config).resolve())
    runtime.reset()
    try:
        return int(args.func(args))
    finally:
        if previous is None:
            os.environ.pop("RECS_CONFIG", None)
        else:
            os.environ["RECS_CONFIG"] = previous
        runtime.reset()
