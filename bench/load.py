"""Load benchmark of the two local servers, in one run: `chalice local` (development) against the
production server (`serve --workers N`: uvicorn over the serving module), on loopback only.

    .venv/bin/python bench/load.py [--seconds 15] [--clients 16] [--workers 2] [--data-dir DIR]

Each server gets its own copy of the bootstrapped sample shop and the same closed-loop load:
`--clients` connections (HTTP/1.1 keep-alive) each sending its next request as soon as the last
one is answered, for `--seconds` (after a short warm-up), with a read/write mix: 70%
`GET /recommendations` for sample users, 10% `GET /related-items`, 20% `POST /events` of 1-3
events with unique event ids. It prints requests/s, p50/p99 latency, errors (anything but a
200/202, or a broken connection), and events accepted (202 bodies) against events stored (counted
in the server's store after it stopped), and the CPU per request of the server's processes and
of this client (which shares the cores with the server under test). SPEC §7: production at least
3x chalice local's requests/s, p99 at most 25 ms, 0 errors, 0 events lost. The machine's load
(`uptime`) is printed with the figures: the cores are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
KEY = "bench-load-key"


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    accepted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    by_route: dict[str, list[float]] = field(default_factory=dict)
    recommended: int = 0  # 200 answers of GET /recommendations, warm-up included


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path) -> None:
    if (data_dir / "store.sqlite3").exists():
        return
    print(f"bootstrapping the sample shop in {data_dir} ...", flush=True)
    env = {**os.environ, "RECS_DATA_DIR": str(data_dir)}
    code = 'from chalicelib.cli import serve; serve.bootstrap("online-retail-ii")'
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)


def sample_ids(data_dir: Path) -> tuple[list[str], list[str]]:
    with sqlite3.connect(data_dir / "store.sqlite3") as db:
        users = [r[0] for r in db.execute("SELECT user_id FROM users LIMIT 3000")]
        items = [r[0] for r in db.execute("SELECT item_id FROM items LIMIT 3000")]
    return users, items


class Server:
    def __init__(self, kind: str, data_dir: Path, workers: int) -> None:
        self.kind, self.data_dir, self.port = kind, data_dir, free_port()
        command = [sys.executable, "-m", "chalicelib", "serve", "--host", HOST]
        command += ["--port", str(self.port), "--server", kind]
        if kind == "production":
            command += ["--workers", str(workers)]
        env = {**os.environ, "RECS_DATA_DIR": str(data_dir), "RECS_API_KEYS": KEY}
        self.log = (data_dir / "server.log").open("w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.kind} did not start: see {self.data_dir / 'server.log'}")

    def cpu_seconds(self) -> float:
        """CPU time of the server's process tree so far (user + system)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        pids = [self.process.pid]
        while pids:
            pid = pids.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
            pids += [int(c) for c in children]
        return total / ticks

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


WRITE_SHARE = 0.2


def _request(n: int, rng: random.Random, users: list[str], items: list[str], tag: str) -> bytes:
    if rng.random() >= WRITE_SHARE:  # reads: recommendations and related items, 7 to 1
        if rng.random() < 7 / 8:
            path = f"/recommendations?user_id={rng.choice(users)}&num_results=25"
        else:
            path = f"/related-items?item_id={rng.choice(items)}&num_results=10"
        return f"GET {path} HTTP/1.1\r\nHost: bench\r\nx-api-key: {KEY}\r\n\r\n".encode()
    events = [
        {"event_type": "view", "item_id": rng.choice(items), "event_id": f"{tag}-{n}-{k}"}
        for k in range(rng.randint(1, 3))
    ]
    body = json.dumps({"user_id": rng.choice(users), "events": events}).encode()
    head = (
        f"POST /events HTTP/1.1\r\nHost: bench\r\nx-api-key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the client, read straight from its buffer (status,
    Content-Length, `Connection: close`): asyncio's streams cost the client about a third more
    CPU per request, CPU the two cores' servers then lack. Both servers meet this same client."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            reply = self._reply()
            if reply is not None:
                self.waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def _reply(self) -> tuple[int, bytes, bool] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower()
        found = _CONTENT_LENGTH.search(head)
        total = end + 4 + (int(found.group(1)) if found else 0)
        if len(self.buffer) < total:
            return None
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        return int(head[9:12]), body, b"\r\nconnection: close" in head

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        if self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")


@dataclass(frozen=True)
class Plan:
    port: int
    measure_from: float
    until: float
    users: list[str]
    items: list[str]
    tag: str


async def _client(cid: int, plan: Plan, result: Result) -> None:
    port, until, measure_from, tag = plan.port, plan.until, plan.measure_from, plan.tag
    users, items = plan.users, plan.items
    rng = random.Random(cid)
    n = 0
    loop = asyncio.get_running_loop()
    conn: Connection | None = None
    while time.monotonic() < until:
        n += 1
        request = _request(cid * 10_000_000 + n, rng, users, items, tag)
        started = time.monotonic()
        try:
            if conn is None or conn.transport is None:
                _, conn = await loop.create_connection(Connection, HOST, port)
            status, body, close = await conn.exchange(request)
        except (OSError, ValueError):  # ConnectionError is an OSError
            result.errors += 1 if started >= measure_from else 0
            conn = None
            continue
        elapsed = time.monotonic() - started
        if close and conn.transport is not None:
            conn.transport.close()
            conn = None
        if status == 202:
            result.accepted += json.loads(body)["accepted"]  # warm-up writes count too
        elif status == 200 and request.startswith(b"GET /recommendations"):
            result.recommended += 1
        if started < measure_from:
            continue
        result.latencies.append(elapsed)
        route = request.split(b" ", 2)[1].split(b"?")[0].decode()
        result.by_route.setdefault(route, []).append(elapsed)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status not in (200, 202):
            result.errors += 1
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def _load(port: int, clients: int, seconds: float, ids: tuple, tag: str) -> Result:
    result = Result()
    measure_from = time.monotonic() + 1.0  # a second of warm-up, not measured
    plan = Plan(port, measure_from, measure_from + seconds, ids[0], ids[1], tag)
    clients_done = asyncio.gather(*(_client(c, plan, result) for c in range(clients)))
    try:  # a server that stops answering ends the run too, its requests counted as errors
        await asyncio.wait_for(clients_done, seconds + 30)
    except TimeoutError:
        result.errors += clients
    return result


def _run_client(load: Coroutine[None, None, Result]) -> Result:
    """The client's loop: uvloop where installed (with the production server), as a lighter
    client leaves the shared cores to the server under test, whichever it is."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(load)
    return uvloop.run(load)


def stored_events(data_dir: Path, tag: str) -> int:
    with sqlite3.connect(data_dir / "store.sqlite3") as db:
        query = "SELECT COUNT(*) FROM interactions WHERE event_id LIKE ?"
        return int(db.execute(query, (f"{tag}-%",)).fetchone()[0])


def _pct(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000 if ordered else 0.0


def served_lists(data_dir: Path) -> int:
    """Served lists the server kept (SPEC section 11), written behind its answers."""
    path = data_dir / "loop.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        query = "SELECT COUNT(*) FROM served WHERE route = 'recommendations'"
        return int(db.execute(query).fetchone()[0])


def uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def run(kind: str, source: Path, work: Path, args: argparse.Namespace, ids: tuple) -> dict:
    data_dir = work / kind
    shutil.copytree(source, data_dir)
    server = Server(kind, data_dir, args.workers)
    try:
        server.wait_ready()
        tag = f"bench-{kind}"
        cpu, client_cpu = server.cpu_seconds(), time.process_time()
        result = _run_client(_load(server.port, args.clients, args.seconds, ids, tag))
        cpu, client_cpu = server.cpu_seconds() - cpu, time.process_time() - client_cpu
    finally:
        server.stop()
    latencies = sorted(result.latencies)
    count = len(latencies)
    return {
        "server": kind,
        "rps": count / args.seconds,
        "p50": latencies[count // 2] * 1000 if count else float("nan"),
        "p99": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else float("nan"),
        "errors": result.errors,
        "accepted": result.accepted,
        "stored": stored_events(data_dir, tag),
        "recommended": result.recommended,
        "kept": served_lists(data_dir),
        "statuses": result.statuses,
        "routes": {r: sorted(v) for r, v in result.by_route.items()},
        # Warm-up second included in both: CPU per request whatever else the machine runs.
        "cpu_ms": cpu * 1000 / max(count, 1) * args.seconds / (args.seconds + 1),
        "client_ms": client_cpu * 1000 / max(count, 1) * args.seconds / (args.seconds + 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--write-share", type=float, default=0.2, help="share of POST /events")
    parser.add_argument(
        "--servers", default="chalice,production", help="which to run (comma-separated)"
    )
    parser.add_argument("--data-dir", type=Path, help="a bootstrapped sample store to reuse")
    args = parser.parse_args()
    global WRITE_SHARE  # noqa: PLW0603
    WRITE_SHARE = args.write_share
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be 1..120 (the run is bounded)")
    with tempfile.TemporaryDirectory(prefix="recs-load-") as tmp:
        work = Path(tmp)
        source = args.data_dir or work / "sample"
        prepare(source)
        ids = sample_ids(source)
        print(f"before: {uptime()}")
        kinds = [k for k in ("chalice", "production") if k in args.servers.split(",")]
        rows = [run(kind, source, work, args, ids) for kind in kinds]
        print(f"after:  {uptime()}")
    print(f"\n{args.clients} clients, {args.seconds:.0f} s, 70% recommendations / 10% related "
          f"items / 20% events; production: {args.workers} workers")  # fmt: skip
    print(f"{'server':12s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} "
          f"{'accepted':>9s} {'stored':>7s} {'lost':>5s} {'cpu ms/req':>10s} "
          f"{'client':>7s}")  # fmt: skip
    for row in rows:
        lost = row["accepted"] - row["stored"]
        print(f"{row['server']:12s} {row['rps']:8.0f} {row['p50']:8.2f} {row['p99']:8.2f} "
              f"{row['errors']:7d} {row['accepted']:9d} {row['stored']:7d} {lost:5d} "
              f"{row['cpu_ms']:10.2f} {row['client_ms']:7.2f}")  # fmt: skip
    for row in rows:
        print(f"{row['server']:12s} served lists kept: {row['kept']} of {row['recommended']} "
              "recommendations answered")  # fmt: skip
    print("\nlatency by route, ms (p50 / p99 / max)")
    for row in rows:
        parts = [
            f"{route} {_pct(v, 0.5):.1f} / {_pct(v, 0.99):.1f} / {v[-1] * 1000:.1f}"
            for route, v in sorted(row["routes"].items())
        ]
        print(f"{row['server']:12s} " + "; ".join(parts))
    if len(rows) < 2:
        return 0
    ratio = rows[1]["rps"] / rows[0]["rps"] if rows[0]["rps"] else float("inf")
    print(f"production / chalice local: {ratio:.1f}x requests/s (target >= 3x); "
          f"production p99 {rows[1]['p99']:.1f} ms (target <= 25 ms)")  # fmt: skip
    ok = ratio >= 3 and rows[1]["p99"] <= 25 and not rows[1]["errors"]
    ok = ok and all(r["accepted"] == r["stored"] and r["kept"] == r["recommended"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
