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
import signal
import socket
import sys
import time
from typing import Any

from chalicelib.cli.output import CommandError, fail
from chalicelib.cli.progress import progress_bar
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from chalicelib.vocabulary import Dataset

# The bundled samples `serve --bootstrap --sample NAME` can load; the first is the default: a
# shop with categories, prices, ages and five event types, so every README filter shows.
SAMPLES = ("retail-demo-store", "online-retail-ii")
SAMPLE_DIR = PROJECT_ROOT / "data" / SAMPLES[0]
# A customer of each sample, for the banner's curl line (README "Try it" uses the same).
SAMPLE_USERS = {"retail-demo-store": "74", "online-retail-ii": "13085"}
# The bundled sample's datasets, in the order they are imported.
DATASETS: tuple[Dataset, ...] = ("items", "users", "interactions")
DEV_STAGE = "local"
# The `local` stage's development key, as documented in the README and .chalice/config.json.
DEV_KEY = "dev-local-key"


def bootstrap(sample: str = SAMPLES[0]) -> None:
    """Load a bundled sample shop and train once, unless the store already has them."""
    rt = runtime.current()
    health = rt.serving.health()
    if not health.get("items"):
        with progress_bar() as report:
            for dataset in DATASETS:
                path = PROJECT_ROOT / "data" / sample / f"{dataset}.csv.gz"
                result = rt.workflow.import_file(dataset, str(path), "full", report)
                if result.status != "imported":
                    raise CommandError(f"could not import {path}: {result.errors}", 1)
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


def port_in_use(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (checked before the sample's minute of
    import and training), or None when it can."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    if (reason := port_in_use(args.host, args.port)) is not None:
        return fail(
            args,
            f"cannot listen on {args.host}:{args.port} ({reason.lower()}): stop what uses it, or "
            f"choose another port: make run PORT={args.port + 1}, or --port {args.port + 1}",
        )
    shown = serving_keys()
    if args.bootstrap:
        started = time.perf_counter()
        bootstrap(args.sample)
        print(f"sample shop ready in {time.perf_counter() - started:.1f} s")
    base = f"http://{args.host}:{args.port}"
    key = shown or "$YOUR_KEY"
    print("\nTry it:\n")
    user = SAMPLE_USERS[args.sample]
    print(f"  curl -H 'x-api-key: {key}' '{base}/recommendations?user_id={user}&num_results=5'\n")
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
    # Chalice's CLI imports inquirer, whose `blessed` asks the terminal about itself at import
    # and waits up to 5 s per question for replies that never come (10 s under a terminal).
    os.environ.setdefault("BLESSED_QUERY_TIMEOUT_SECONDS", "0")
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
    # SIGTERM ends the server as Ctrl-C does, through Python's exit, so that the served lists
    # written behind the answers are flushed (by default SIGTERM kills the process outright).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server.serve_forever()
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def add_command(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the API (production server, or `chalice local`)")
    s.add_argument("--bootstrap", action="store_true", help="load the sample shop and train first")
    s.add_argument(
        "--sample", choices=SAMPLES, default=SAMPLES[0],
        help="the bundled sample --bootstrap loads into an empty store (default: %(default)s)",
    )  # fmt: skip
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument(
        "--port", type=int, default=os.environ.get("PORT") or "8000",
        help="default: the PORT variable, else 8000",
    )  # fmt: skip
    s.add_argument(
        "--server", choices=["production", "chalice"], default="production",
        help="uvicorn over the serving module (default), or `chalice local` (development)",
    )  # fmt: skip
    s.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.add_argument("--stage", default=DEV_STAGE, help="the Chalice stage (chalice only)")
    s.set_defaults(func=cmd_serve)
