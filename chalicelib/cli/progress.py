"""Progress of long commands (import, train, batch): rich bars on a terminal, lines in logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.vocabulary import Progress


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A rich progress display on a terminal; plain lines in logs and CI. On stderr, so that
    `--json` output on stdout stays machine-readable."""
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    # Narrow enough for an 80-column terminal: the time column shows what is left while a step
    # runs and what it took once it is done.
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
        TimeRemainingColumn(compact=True, elapsed_when_finished=True), transient=False,
        console=Console(stderr=True),
    )  # fmt: skip
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if not tasks:
            bar.start()  # on the first report: a command that fails first prints only its error
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        yield report
    finally:
        if tasks:
            bar.stop()
