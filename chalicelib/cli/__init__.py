"""The command line: `python -m chalicelib {import,train,metrics,versions,deploy,recommend,batch,
braze-push,setup,popular,catalogue,serve,report}`.

Commands run against the provider of the current `RECS_*` environment (default: `local`),
through the same seam the Lambda functions use: `workflow` holds the Personalize workflow's
commands, `answers` the ones that give recommendations, `serve` the server `make run` starts,
`report` the evaluation report.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from chalicelib.cli import answers, report, serve, workflow
from chalicelib.seam import runtime

bootstrap = serve.bootstrap


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chalicelib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    workflow.add_commands(sub)
    answers.add_commands(sub)
    serve.add_command(sub)
    report.add_command(sub)
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
