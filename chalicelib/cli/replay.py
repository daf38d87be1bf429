"""The failures queues' commands: `replay-currents` (the Currents files `ingest_currents` gave up
on, sent again once their lease is over) and `replay-imports` (the CSV files `import_s3` gave up
on, imported again). Both read Lambda's records of the S3 events it gave up on from the stage's
queue, print what each message holds and what became of it (JSON on stdout), say on stderr what
is left, and run with the operator's credentials and the stage's settings (`--stage`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from chalicelib.cli.output import print_json
from chalicelib.invocations import Replay, ReplayStatus
from chalicelib.seam import runtime
from chalicelib.settings import PREFIX, PROJECT_ROOT

# What stays in the queue after a run.
LEFT: tuple[ReplayStatus, ...] = ("waiting", "failed", "unreadable")


def cmd_replay_currents(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is left in the queue (or on a dry run), 1 when a file waits for
    its lease, failed again or a message is unreadable: run it again later."""
    with stage_settings(args.stage):
        replays = runtime.current().workflow.replay_currents(dry_run=args.dry_run, drop=args.drop)
    waiting = [r.due_at for r in replays if r.status == "waiting"]
    after = f"; run again after {max(waiting)}, when the last lease is over" if waiting else ""
    return _said(args, replays, after)


def cmd_replay_imports(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is left in the queue (or on a dry run), 1 when a file is gone,
    failed validation or failed again, or a message is unreadable: fix it, run it again."""
    with stage_settings(args.stage):
        replays = runtime.current().workflow.replay_imports(dry_run=args.dry_run, drop=args.drop)
    return _said(args, replays, "")


def _said(args: argparse.Namespace, replays: Sequence[Replay], after: str) -> int:
    """The JSON of every message; on stderr, the queue's count by status, then one line per
    message left (or listed by a dry run, or dropped) with its files and reason, and each
    `--drop` id that was not in the queue (exit 1: nothing was dropped for it)."""
    print_json([r.as_dict() for r in replays])
    counts: Counter[ReplayStatus] = Counter(r.status for r in replays)
    summary = (
        f"{len(replays)} in the failures queue: " if replays else "the failures queue is empty"
    )
    summary += ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"{args.command}: {summary}{after}"]
    lines += [
        f"  {r.status}: {' '.join(r.files) or r.message_id}: {r.reason}"
        for r in replays
        if r.status != "replayed"
    ]
    absent = [i for i in dict.fromkeys(args.drop) if i not in {r.message_id for r in replays}]
    lines += [f"  not in the queue, nothing dropped: {message_id}" for message_id in absent]
    print("\n".join(lines), file=sys.stderr)
    left = sum(counts[status] for status in LEFT)
    return 1 if (left and not args.dry_run) or absent else 0


@contextmanager
def stage_settings(stage: str | None) -> Iterator[None]:
    """With a stage, its `RECS_*` environment variables from .chalice/config.json (what
    `python -m deploy sync` wrote) fill in what the environment does not set, as the stage's
    Lambda functions see them; put back afterwards."""
    if not stage:
        yield
        return
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    stages = config.get("stages", {})
    if stage not in stages:
        raise ValueError(f"no stage {stage!r} in .chalice/config.json ({', '.join(stages)})")
    found = {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }
    added = {
        k: str(v)
        for k, v in found.items()
        if k.startswith(PREFIX) and str(v) and k not in os.environ
    }
    os.environ.update(added)
    runtime.reset()
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
        runtime.reset()


def add_commands(sub: Any) -> None:
    for name, func, does, dry in (
        (
            "replay-currents",
            cmd_replay_currents,
            "send again the Braze Currents files ingest_currents gave up on (its failures "
            "queue, RECS_CURRENTS_FAILURES_QUEUE), once their claims' lease is over",
            "list the queue's files and when each is due",
        ),
        (
            "replay-imports",
            cmd_replay_imports,
            "import again the CSV files import_s3 gave up on (its failures queue, "
            "RECS_IMPORT_FAILURES_QUEUE), as import_s3 imports them; a message leaves the "
            "queue once its files are imported",
            "list the queue's files and why Lambda gave up on each",
        ),
    ):
        s = sub.add_parser(name, help=does)
        s.add_argument(
            "--stage", help="take the RECS_* settings the environment lacks from this Chalice stage"
        )
        how = s.add_mutually_exclusive_group()
        how.add_argument("--dry-run", action="store_true", help=f"{dry}; change nothing")
        how.add_argument(
            "--drop", action="append", default=[], metavar="MESSAGE_ID",
            help="remove this message from the queue without replaying it (a file that will "
            "never go through; its id is in the JSON a run prints); repeatable",
        )  # fmt: skip
        s.set_defaults(func=func)
