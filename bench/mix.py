"""The production server's app in process, with bench/load.py's request mix: CPU per request by
route, without HTTP, sockets or the other processes that share the cores.

    .venv/bin/python bench/mix.py [--requests 4000] [--data-dir DIR] [--profile OUT.prof]

It drives `chalicelib.api.server.application` (the ASGI app uvicorn runs, started and stopped
through its lifespan as a worker is) on a copy of the bootstrapped sample shop: 70%
`GET /recommendations`, 10% `GET /related-items`, 20% `POST /events` of 1-3 new events, after
300 requests of warm-up. CPU time (not wall time) is
what it reports, so a busy machine changes the figures less; to compare two trees, run each
tree's copy of this script at the same time, so that both meet the same load.
`--profile` writes cProfile's stats of the measured requests (`python -m pstats OUT.prof`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-mix-key"
Call = tuple[str, str, bytes, bytes]  # method, path, query string, body


def _calls(n: int, users: list[str], items: list[str]) -> list[Call]:
    rng = random.Random(1)
    calls: list[Call] = []
    for i in range(n):
        if rng.random() >= 0.2:
            if rng.random() < 7 / 8:
                query = f"user_id={rng.choice(users)}&num_results=25"
                calls.append(("GET", "/recommendations", query.encode(), b""))
            else:
                query = f"item_id={rng.choice(items)}&num_results=10"
                calls.append(("GET", "/related-items", query.encode(), b""))
            continue
        events = [
            {"event_type": "view", "item_id": rng.choice(items), "event_id": f"mix-{i}-{k}"}
            for k in range(rng.randint(1, 3))
        ]
        body = json.dumps({"user_id": rng.choice(users), "events": events}).encode()
        calls.append(("POST", "/events", b"", body))
    return calls


async def _call(app: Any, call: Call) -> int:
    method, path, query, body = call
    headers = [(b"host", b"bench"), (b"x-api-key", KEY.encode())]
    if body:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": method, "path": path, "query_string": query}
    scope |= {"headers": headers, "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


class _Lifespan:
    """The worker's start and stop as uvicorn runs them (runtime pinned and models loaded at
    startup; what was written behind the answers flushed at shutdown)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(
            self.app({"type": "lifespan"}, self.messages.get, self.sent.put)
        )
        await self.messages.put({"type": "lifespan.startup"})
        await self.sent.get()

    async def stop(self) -> None:
        await self.messages.put({"type": "lifespan.shutdown"})
        await self.sent.get()
        if self.task is not None:
            await self.task


async def _run(calls: list[Call], warm_up: int, profile: Path | None) -> dict[str, list[float]]:
    from chalicelib.api import server  # after RECS_DATA_DIR is set

    lifespan = _Lifespan(server.application)
    await lifespan.start()
    for call in calls[:warm_up]:
        await _call(server.application, call)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    cpu: dict[str, list[float]] = {}
    for call in calls[warm_up:]:
        started = time.process_time()
        status = await _call(server.application, call)
        cpu.setdefault(call[1], []).append(time.process_time() - started)
        if status not in (200, 202):
            raise SystemExit(f"{call[0]} {call[1]} answered {status}")
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    await lifespan.stop()
    return cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--data-dir", type=Path, help="a bootstrapped sample store to copy")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from load import prepare, sample_ids, uptime

    with tempfile.TemporaryDirectory(prefix="recs-mix-") as tmp:
        source = args.data_dir or Path(tmp) / "sample"
        prepare(source)
        work = Path(tmp) / "work"
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("server.log"))
        os.environ.update(RECS_DATA_DIR=str(work), RECS_API_KEYS=KEY)
        users, items = sample_ids(work)
        calls = _calls(args.requests + 300, users, items)
        print(f"before: {uptime()}")
        cpu = asyncio.run(_run(calls, 300, args.profile))
        print(f"after:  {uptime()}")
        with sqlite3.connect(work / "store.sqlite3") as db:
            stored = db.execute("SELECT COUNT(*) FROM interactions WHERE event_id LIKE 'mix-%'")
            print(f"events stored: {stored.fetchone()[0]}")
    total = sum(sum(v) for v in cpu.values())
    print(f"{args.requests} requests, {total / args.requests * 1e6:.0f} us of CPU per request")
    for path, times in sorted(cpu.items()):
        print(f"  {path:18s} {len(times):6d} requests  {sum(times) / len(times) * 1e6:6.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
