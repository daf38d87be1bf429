"""The command line: `python -m chalicelib {import,train,metrics,versions,deploy,recommend,batch,
braze-push,setup,popular,catalogue,attribution,segments,replay-currents,replay-imports,serve,
emulate,run-aws,report}`.

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
from typing import NoReturn

from chalicelib.cli import answers, emulate, loop, replay, report, run_aws, serve, workflow
from chalicelib.cli.output import USAGE_ERROR, CommandError, fail
from chalicelib.seam import runtime
from chalicelib.vocabulary import ProviderError

bootstrap = serve.bootstrap


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m chalicelib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    workflow.add_commands(sub)
    answers.add_commands(sub)
    loop.add_commands(sub)
    replay.add_commands(sub)
    serve.add_command(sub)
    emulate.add_command(sub)
    run_aws.add_command(sub)
    report.add_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except CommandError as exc:
        return fail(args, exc, exc.code)
    except FileNotFoundError as exc:  # the commonest mistake: say which file, nothing else
        return fail(args, f"no such file: {exc.filename or exc}")
    except (ValueError, ProviderError, OSError) as exc:
        return fail(args, str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        return fail(args, "interrupted", 130)


def _run(args: argparse.Namespace) -> int:
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
