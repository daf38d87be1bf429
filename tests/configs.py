"""The project's recs.toml with one named filter set to a test's expression."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.settings import PROJECT_ROOT


def with_filter(folder: Path, name: str, expression: str) -> Path:
    """A copy of `chalicelib/recs.toml` in `folder` where filter `name` is `expression` (the
    shipped definition, if any, replaced: the `[filters]` table is the file's last)."""
    base = (PROJECT_ROOT / "chalicelib" / "recs.toml").read_text()
    base = re.sub(rf"(?m)^{re.escape(name)} = .*\n?", "", base)
    config = folder / "recs.toml"
    config.write_text(f"{base.rstrip()}\n{name} = '{expression}'\n")
    return config
