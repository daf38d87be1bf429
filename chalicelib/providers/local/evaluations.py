"""Each solution version's evaluation detail (`engine.diagnostics`), kept as JSON beside its
model file (`models/<version>.evaluation.json`): what `python -m chalicelib report` plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def path_of(artifact: Path) -> Path:
    return artifact.with_suffix(".evaluation.json")


def save(artifact: Path, diagnostics: dict[str, Any]) -> None:
    path_of(artifact).write_text(json.dumps(diagnostics), encoding="utf-8")


def load(artifact: Path) -> dict[str, Any] | None:
    """None for a version trained before it was recorded, or an unreadable file: the report then
    shows that version's metrics alone."""
    try:
        loaded = json.loads(path_of(artifact).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
