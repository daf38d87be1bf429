"""What the report is made of, wherever it is rendered (`python -m chalicelib report` writes a
file, `GET /report` serves it): the newest versions of each solution, and the engine benchmark's
results file (`bench/engine.py --json`) when it exists and reads."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chalicelib.vocabulary import SolutionVersionInfo

DEFAULT_LIMIT = 6
PEERS_FILE = "bench-engine.json"


def newest(versions: Iterable[SolutionVersionInfo], limit: int) -> list[SolutionVersionInfo]:
    """The first `limit` versions of each solution, from a newest-first list."""
    kept: dict[str, int] = {}
    shown = []
    for info in versions:
        kept[info.solution] = kept.get(info.solution, 0) + 1
        if kept[info.solution] <= limit:
            shown.append(info)
    return shown


def read_peers(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The benchmark's results, or None with why they were left out (None: no file at all)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"benchmark results at {path} not read ({exc}); the report leaves peers out"
    if not isinstance(loaded, dict):
        return None, f"benchmark results at {path} are not a JSON object; peers left out"
    return loaded, None
