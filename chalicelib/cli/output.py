"""What commands print: JSON on stdout; progress and errors on stderr, every error in one form,
`COMMAND: what is wrong` (`fail`, or `CommandError` raised where a return cannot reach)."""

from __future__ import annotations

import argparse
import json
import sys

# The exit code of every error the user can fix (a bad argument, file, id or value), as
# argparse uses it; 1 stays for a command that ran and reports failures (bad CSV rows, lines).
USAGE_ERROR = 2


class CommandError(Exception):
    """A command stops here, deep in its work: `main` says why through `fail` (exit `code`)."""

    def __init__(self, message: str, code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.code = code


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(args: argparse.Namespace, message: object, code: int = USAGE_ERROR) -> int:
    """Say why the command stopped, `COMMAND: message` on stderr (no traceback; an expression
    with its caret keeps its lines), and give its exit code back for the command to return."""
    print(f"{args.command}: {message}", file=sys.stderr)
    return code
