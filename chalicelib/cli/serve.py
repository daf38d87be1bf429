"""`python -m chalicelib serve`: the sample shop loaded on request, then the API on the production
server (`chalicelib.api.server`: uvicorn over `chalicelib.api.routes`) or on `chalice local`.

Which API keys it serves with: the environment's (`RECS_API_KEYS` or `RECS_API_KEYS_PARAMETER`)
when set, else the `local` stage's development key. `chalice local` alone would let the stage's
key in `.chalice/config.json` win over the environment, so it is started in this process and the
environment's `RECS_*` values are put back after Chalice loaded the stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from chalicelib.cli.progress import progress_bar
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from chalicelib.vocabulary import Dataset

SAMPLE_DIR = PROJECT_ROOT / "data" / "online-retail-ii"
# The bundled sample's datasets, in the order they are imported.
DATASETS: tuple[Dataset, ...] = ("items", "users", "interactions")
DEV_STAGE = "local"
# The `local` stage's development key, as documented in the README and .chalice/config.json.
DEV_KEY = "dev-local-key"


def bootstrap() -> None:
    """Load the bundled sample shop and train once, unless the store already has them."""
    rt = runtime.current()
    health = rt.serving.health()
    if not health.get("items"):
        with progress_bar() as report:
            for dataset in DATASETS:
                path = SAMPLE_DIR / f"{dataset}.csv.gz"
                result = rt.workflow.import_file(dataset, str(path), "full", report)
                if result.status != "imported":
                    raise SystemExit(f"could not import {path}: {result.errors}")
    if not health.get("model_version"):
        with progress_bar() as report:
            rt.workflow.train(None, report)


def serving_keys() -> str | None:
    """The environment wins: the `local` stage's development key applies only when neither
    RECS_API_KEYS nor RECS_API_KEYS_PARAMETER is set. Returns the key to show in the banner
    (the development key only: a key of the shop's own is never printed)."""
    if os.environ.get("RECS_API_KEYS_PARAMETER", "").strip():
        return None
    if os.environ.get("RECS_API_KEYS", "").strip():
        return None
    os.environ["RECS_API_KEYS"] = DEV_KEY
    return DEV_KEY


def cmd_serve(args: argparse.Namespace) -> int:
    shown = serving_keys()
    if args.bootstrap:
        started = time.perf_counter()
        bootstrap()
        print(f"sample shop ready in {time.perf_counter() - started:.1f} s")
    base = f"http://{args.host}:{args.port}"
    key = shown or "$YOUR_KEY"
    print("\nTry it:\n")
    print(f"  curl -H 'x-api-key: {key}' '{base}/recommendations?user_id=13085'\n")
    if args.server == "chalice":
        return _chalice_local(args)
    from chalicelib.api import server  # noqa: PLC0415 - uvicorn loads only for this command

    workers = args.workers or os.cpu_count() or 1
    print(f"production server (uvicorn): {workers} worker process(es)", flush=True)
    server.run(args.host, args.port, workers, access_log=args.access_log)
    return 0


def _chalice_local(args: argparse.Namespace) -> int:
    """`chalice local` in this process, so that the environment's RECS_* values win over the
    stage's (`chalice local` itself copies the stage's variables over the environment)."""
    import logging  # noqa: PLC0415

    from chalice.cli import create_local_server  # noqa: PLC0415
    from chalice.cli.factory import CLIFactory  # noqa: PLC0415

    mine = {k: v for k, v in os.environ.items() if k.startswith("RECS_")}
    os.chdir(PROJECT_ROOT)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    factory = CLIFactory(str(PROJECT_ROOT), environ=os.environ)
    server = create_local_server(factory, args.host, args.port, args.stage)
    os.environ.update(mine)
    print(f"chalice local (development server), stage {args.stage}", flush=True)
    server.serve_forever()
    return 0


def add_command(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the API (production server, or `chalice local`)")
    s.add_argument("--bootstrap", action="store_true", help="load the sample shop and train first")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--server", choices=["production", "chalice"], default="production",
        help="uvicorn over the serving module (default), or `chalice local` (development)",
    )  # fmt: skip
    s.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.add_argument("--stage", default=DEV_STAGE, help="the Chalice stage (chalice only)")
    s.set_defaults(func=cmd_serve)
