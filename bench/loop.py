"""The cost of keeping what was served (SPEC section 11) on the `local` provider's request path:
`LocalLoop.record_served` per answer (one SQLite insert in its own file, WAL), against the
store's own write of one posted event (`LocalStore.add_events`, what `POST /events` costs),
measured in the same run.

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
            record = ServedList(
                new_recommendation_id(), f"u{n % 500}", items, "recommendations",
                "personalized", time.time(), "v1", "cmp-1",
            )  # fmt: skip
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
    load = os.getloadavg()[0]
    print(f"{args.writes} writes each; load average {load:.2f} on {os.cpu_count()} cores")
    print(_summary("served list kept (record_served)", served))
    print(_summary("peer: one event stored (add_events)", posted))
    ratio = statistics.median(served) / statistics.median(posted)
    print(f"ratio of medians (served / event): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
