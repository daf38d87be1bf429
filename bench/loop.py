"""The cost of keeping what was served (SPEC section 11) on the `local` provider's request path:
`LocalLoop.record_served` per answer (it queues the list; a writer thread writes the queue behind
the answers), against the store's own write of one posted event (`LocalStore.add_events`, what
`POST /events` costs), measured in the same run; then what the writer pays per list, off the
request path, writing batches of 200 (what it finds every 0.2 s at 1,000 answers a second).

    .venv/bin/python bench/loop.py [--writes 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.providers.local.loop import LocalLoop  # noqa: E402
from chalicelib.providers.local.store import LocalStore  # noqa: E402
from chalicelib.vocabulary import ServedList, new_recommendation_id  # noqa: E402


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    return f"{name:34s} p50 {statistics.median(ordered):.3f} ms  p99 {p99:.3f} ms"


def _record(n: int, items: list[str]) -> ServedList:
    return ServedList(
        new_recommendation_id(), f"u{n % 500}", items, "recommendations",
        "personalized", time.time(), "v1", "cmp-1",
    )  # fmt: skip


def _writer_cost(tmp: Path, writes: int, items: list[str]) -> float:
    """ms per list of the writer's batches (one transaction per 200 lists)."""
    loop = LocalLoop(tmp / "writer", ttl_days=30, max_records=1_000_000)
    spent = 0.0
    for start in range(0, writes, 200):
        for n in range(start, min(start + 200, writes)):
            loop.record_served(_record(n, items))
        started = time.perf_counter()
        loop.flush()
        spent += time.perf_counter() - started
    return spent * 1000 / writes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loop = LocalLoop(Path(tmp), ttl_days=30, max_records=1_000_000)
        store = LocalStore(Path(tmp) / "store")
        served, posted = [], []
        items = [f"item-{k}" for k in range(25)]
        for n in range(args.writes):
            record = _record(n, items)
            started = time.perf_counter()
            loop.record_served(record)
            served.append((time.perf_counter() - started) * 1000)
            row = {
                "user_id": f"u{n % 500}", "session_id": None, "item_id": items[n % 25],
                "event_type": "view", "event_value": None, "ts": time.time(),
                "event_id": f"e{n}", "recommendation_id": None, "impression": None,
                "properties": None,
            }  # fmt: skip
            started = time.perf_counter()
            store.add_events([row])
            posted.append((time.perf_counter() - started) * 1000)
        writer = _writer_cost(Path(tmp), args.writes, items)
    load = os.getloadavg()[0]
    print(f"{args.writes} writes each; load average {load:.2f} on {os.cpu_count()} cores")
    print(_summary("served list kept (record_served)", served))
    print(_summary("peer: one event stored (add_events)", posted))
    ratio = statistics.median(served) / statistics.median(posted)
    print(f"ratio of medians (served / event): {ratio:.2f}")
    print(f"the writer, off the request path: {writer:.4f} ms per list in batches of 200")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
