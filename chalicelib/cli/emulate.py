"""`python -m chalicelib emulate`: Amazon Personalize's three APIs on the embedded engine
(`chalicelib.emulator`), for boto3 clients pointed at it with `AWS_ENDPOINT_URL_PERSONALIZE`,
`AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME` and `AWS_ENDPOINT_URL_PERSONALIZE_EVENTS`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any


def cmd_emulate(args: argparse.Namespace) -> int:
    from chalicelib.emulator import server  # noqa: PLC0415 - uvicorn and the engine load here

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    url = f"http://{args.host}:{args.port}"
    print("Amazon Personalize emulator. Point boto3 at it with:\n")
    for service in ("PERSONALIZE", "PERSONALIZE_RUNTIME", "PERSONALIZE_EVENTS"):
        print(f"  export AWS_ENDPOINT_URL_{service}={url}")
    print(flush=True)
    server.run(
        Path(args.data_dir), args.host, args.port, region=args.region, step_seconds=args.step
    )
    return 0


def add_command(sub: Any) -> None:
    s = sub.add_parser("emulate", help="serve Amazon Personalize's APIs on the local engine")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8001)
    s.add_argument(
        "--data-dir", default=".data/emulator", help="registry, stores and models (kept)"
    )
    s.add_argument("--region", help="the region in ARNs (default: AWS_DEFAULT_REGION)")
    s.add_argument(
        "--step", type=float, default=0.05,
        help="seconds a resource stays in each of CREATE PENDING and CREATE IN_PROGRESS",
    )  # fmt: skip
    s.set_defaults(func=cmd_emulate)
