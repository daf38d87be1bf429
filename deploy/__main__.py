"""Deployment commands, run from the project root with the development virtualenv:

python -m deploy sync --stage dev [--stack braze-recs-dev]   # stack outputs -> the stage
python -m deploy check --stage dev                           # ready to deploy?
python -m deploy deploy --stage dev                          # chalice deploy, completed
"""

from __future__ import annotations

import argparse
import sys

from deploy import release, stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("sync", "write the stack's outputs and the Personalize resources into the stage"),
        ("check", "list what stops the stage from being deployed"),
        ("deploy", "check, then chalice deploy with partial batch responses and S3 failure queues"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--stage", required=True)
        if name == "sync":
            command.add_argument("--stack", help="the infrastructure stack (braze-recs-STAGE)")
    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            for path in stage.sync(args.stage, args.stack or f"braze-recs-{args.stage}"):
                print(f"wrote {path.relative_to(stage.PROJECT_ROOT)}")
            return 0
        if args.command == "check":
            problems = stage.check_stage(stage.PROJECT_ROOT, args.stage)
            print("\n".join(problems) or f"stage {args.stage} is ready to deploy")
            return 1 if problems else 0
        return release.deploy(args.stage)
    except stage.StageError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
