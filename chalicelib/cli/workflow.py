"""The workflow commands: `import`, `setup`, `train`, `metrics`, `versions`, `deploy`, `popular`
and `catalogue`, each a call to the provider's `Workflow` role."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chalicelib.cli.output import fail, print_json
from chalicelib.cli.progress import progress_bar
from chalicelib.csvdata import Validation, read_rows
from chalicelib.seam import runtime


def cmd_import(args: argparse.Namespace) -> int:
    """A local path or s3:// URI, on either provider: on `local` the rows load into the store;
    on `personalize` the file is validated and imported exactly as `import_s3` does (a local file
    is first uploaded under s3://RECS_IMPORT_BUCKET/imports/<dataset>/). No bucket, a file in
    the wrong place: a ValueError, which `main` says in one line (exit code 2), as every error
    below."""
    workflow = runtime.current().workflow
    if args.dataset == "currents":
        return _import_currents(args)
    with progress_bar() as report:
        result = workflow.import_file(args.dataset, args.path, args.mode, report)
    print_json(asdict(result))
    return 0 if result.ok else 1


def _import_currents(args: argparse.Namespace) -> int:
    """Braze Currents Avro files (a file or a folder; s3:// on AWS), each record once: a
    report per file; exit 1 when a record was dead-lettered or must be sent again (failed,
    or held under another import's lease). A missing file, not Avro, AWS refusing: one line."""
    with progress_bar() as report:
        reports = runtime.current().workflow.import_currents(args.path, args.event_type, report)
    print_json([r.as_dict() for r in reports])
    return 1 if any(r.dead_lettered or r.retry or r.pending for r in reports) else 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Apply the configuration: Personalize resources on AWS; on `local`, a checked config. A
    bad file, a filter expression (with its position), Personalize's own message: one line."""
    rt = runtime.current()  # building the local provider checks the file and its filters
    with progress_bar() as report:
        result = rt.workflow.setup(report, poll_seconds=args.poll_seconds, dry_run=args.dry_run)
    if args.json:
        print_json(result.as_dict())
        return 0
    for step in result.steps:
        line = f"{step.action:8s} {step.kind:14s} {step.name}"
        print(line + (f"  ({step.detail})" if step.detail else ""))
    if result.settings:
        print("\nStage settings (.chalice/config.json environment_variables):")
        for key, value in result.settings.items():
            print(f'  "{key}": "{value}",')
    return 0


def known_solution(name: str | None) -> str | None:
    """`name` when the configuration has that solution; else a ValueError naming those it has
    (the CLI prints it in one line, exit code 2)."""
    names = [s.name for s in runtime.current().config.solutions]
    if name is not None and name not in names:
        raise ValueError(
            f"no solution {name!r} in the configuration (configured: {', '.join(names)})"
        )
    return name


def cmd_train(args: argparse.Namespace) -> int:
    known_solution(args.solution)
    workflow = runtime.current().workflow
    with progress_bar() as report:  # too little data, bad hyperparameters: a ValueError
        infos = workflow.train(args.solution, report)
    for info in infos:
        print(f"{info.version_id}: {info.training_seconds:.1f} s, {dict(info.counts)}")
        for line in _chosen(info.params):
            print(f"  {line}")
        for name, value in info.metrics.items():
            print(f"  {name:48s} {value:.4f}")
    removed = workflow.prune()
    if removed:
        freed = sum(size for _, size in removed) / 1e6
        print(
            f"removed {len(removed)} older solution version(s) and their model files "
            f"({freed:.1f} MB): {', '.join(v for v, _ in removed)}; kept the newest "
            f"{runtime.current().settings.keep_versions} of each solution (RECS_KEEP_VERSIONS) "
            "and every version a campaign serves"
        )
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
    workflow = runtime.current().workflow
    info = workflow.metrics(known_solution(args.solution), args.version)
    if info is None and args.version:
        return fail(args, f"no solution version {args.version!r}; see `versions`")
    if info is None and args.solution and workflow.versions():
        return fail(args, f"solution {args.solution!r} has no version; see `versions`")
    if info is None:
        return fail(args, "no solution version yet: run `python -m chalicelib train`", 1)
    if args.json:
        print_json({"solutionVersionArn": info.version_id, "metrics": dict(info.metrics)})
    else:
        print(info.version_id)
        for name, value in info.metrics.items():
            print(f"  {name:48s} {value:.4f}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    infos = runtime.current().workflow.versions(known_solution(args.solution))
    if args.json:
        print_json([asdict(info) for info in infos])
        return 0
    for info in infos:
        ndcg = info.metrics.get("normalized_discounted_cumulative_gain_at_10", float("nan"))
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.created))
        print(f"{info.version_id}  {created}  NDCG@10 {ndcg:.4f}  {dict(info.counts)}")
        for line in _chosen(info.params):
            print(f"  {line}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    rt = runtime.current()
    version = args.version
    if version is None:
        conf = rt.config.campaigns.get(args.campaign)
        latest = rt.workflow.versions(conf.solution) if conf else []
        if not latest:
            return fail(args, f"no solution version to deploy to {args.campaign!r}")
        version = latest[0].version_id
    rt.workflow.deploy(args.campaign, version)  # an unknown version: a ValueError naming it
    print(f"{args.campaign} now serves {version}")
    return 0


def cmd_popular(args: argparse.Namespace) -> int:
    """The fallback list: the most interacted-with items of an interactions file (optionally
    only its last `--days`), kept where the provider serves it from (the item table on AWS)."""
    rt = runtime.current()
    top = popular_items(Path(args.input), args.top, args.days, rt.config.schemas["interactions"])
    stored = rt.workflow.store_popular(top)
    if stored:
        print(f"{len(top)} popular items stored in {stored}", file=sys.stderr)
    print_json(top)
    return 0


def popular_items(
    path: Path, top: int, days: float | None = None, schema: Mapping[str, str] | None = None
) -> list[str]:
    """The `top` most interacted-with items of an interactions file (read with the configured
    schema, as `import` reads it), most first; with `days`, only its last days (relative to the
    file's newest event, so that old exports work too)."""
    since = float("-inf")
    if days:
        rows = read_rows(path, "interactions", Validation(), schema)
        newest = max((row[4] for row in rows), default=0)
        since = newest - days * 86_400
    counts: Counter[str] = Counter(
        row[1] for row in read_rows(path, "interactions", Validation(), schema) if row[4] >= since
    )
    return [item for item, _ in counts.most_common(top)]


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Load an items file into the catalogue that decorates responses (no item table on AWS:
    a ValueError)."""
    result = runtime.current().workflow.load_catalogue(Path(args.path))
    print_json({"catalogue": result.destination, "loaded": result.loaded, "errors": result.errors})
    return 0 if not result.errors else 1


def add_commands(sub: Any) -> None:
    s = sub.add_parser(
        "import", help="load a CSV file as a dataset, or forward Braze Currents Avro files"
    )
    s.add_argument("dataset", choices=["interactions", "users", "items", "currents"])
    s.add_argument(
        "path", help="a CSV (.csv or .csv.gz) file, Currents .avro files, or an s3:// URI"
    )
    s.add_argument("--mode", choices=["full", "incremental"], default="incremental")
    s.add_argument(
        "--event-type",
        help="currents: the Currents event type of files outside Currents' own layout "
        "(e.g. users.behaviors.Purchase)",
    )
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

    s = sub.add_parser("catalogue", help="load an items CSV into the catalogue (RECS_ITEMS_TABLE)")
    s.add_argument("path")
    s.set_defaults(func=cmd_catalogue)
