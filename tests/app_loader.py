"""`app.py` imported afresh with a stage's variables, as `chalice package` or Lambda imports it:
its event sources are named from the environment at import time, so a test that needs them
(or checks them) loads its own copy instead of the module the other tests share."""

from __future__ import annotations

import importlib.util
import itertools
import os
from typing import Any

from chalicelib.settings import PROJECT_ROOT

_count = itertools.count()


def load_app(**variables: str) -> Any:
    """The Chalice app of a fresh `app.py` imported with `variables` set (and no other RECS_*
    event-source names)."""
    saved = dict(os.environ)
    for name in ("RECS_EVENTS_QUEUE", "RECS_EVENTS_STREAM", "RECS_IMPORT_BUCKET"):
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        spec = importlib.util.spec_from_file_location(
            f"app_{next(_count)}", PROJECT_ROOT / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module.app
