"""What commands print: JSON on stdout (progress and errors go to stderr)."""

from __future__ import annotations

import json


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
