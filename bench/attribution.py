"""Attribution (SPEC section 11: `python -m chalicelib attribution`, `report`, `GET /report`) over
a large `local` loop: a generated loop of `--lists` served lists (default 1,000,000, the size
`RECS_SERVED_MAX_RECORDS` keeps) with their Currents impressions, clicks and purchases at known
rates (tests/attribution_support.py's `generated`), then the time and peak memory of the
command's computation, `over_last_days`, two ways, each in a process of its own, in the same run:

- before: the Python pass it replaced (`reference_attribute` over `LocalLoop.history`), the peer;
- after: the sums inside SQLite (`LocalLoop.attribution`, chalicelib/attribution.py).

Both must give the very same figures (checked). Peak memory is the process's peak resident set
less what it held before the computation (interpreter, imports, an open loop); time is the
process's CPU time (a colleague's benchmark may pause niced processes: wall time is shown too).

    .venv/bin/python bench/attribution.py [--lists 1000000] [--items 25] [--window-hours 24]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.attribution import over_last_days  # noqa: E402
from chalicelib.providers.local.loop import LocalLoop  # noqa: E402
from chalicelib.vocabulary import Engagement, ServedList  # noqa: E402
from tests.attribution_support import generated, generated_totals, reference_attribute  # noqa: E402

DAYS = 30.0
INSERT_SERVED = (
    "INSERT INTO served (recommendation_id, user_id, campaign, canvas_step, route, source, "
    "solution_version, items, served_at) VALUES (?,?,?,?,?,?,?,?,?)"
)


def _loop(data_dir: Path, lists: int) -> LocalLoop:
    return LocalLoop(data_dir, ttl_days=3650, max_records=lists)


def fill(data_dir: Path, lists: int, items: int) -> int:
    """The generated loop, written in batches (as the writer thread and `import currents` would,
    without their per-record overhead); how many engagements."""
    loop = _loop(data_dir, lists)
    start = time.time() - lists - 86_400  # a list a second, all inside the 30-day look-back
    served: list[tuple[Any, ...]] = []
    engaged: list[Engagement] = []
    count = 0

    def write() -> None:
        with loop.transaction() as db:
            db.executemany(INSERT_SERVED, served)
        loop.record_engagements(engaged)
        served.clear()
        engaged.clear()

    for record in generated(lists, items=items, start=start, spacing=1.0):
        if isinstance(record, ServedList):
            r, items_json = record, json.dumps(list(record.item_ids))
            served.append(
                (r.recommendation_id, r.user_id, r.campaign, r.canvas_step, r.route, r.source,
                 r.solution_version, items_json, r.served_at)
            )  # fmt: skip
        else:
            engaged.append(record)
            count += 1
        if len(served) >= 20_000:
            write()
    write()
    return count


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(data_dir: Path, lists: int, path: str, window_hours: float) -> dict[str, Any]:
    """One computation in this process: seconds, peak memory above the start, the figures."""
    loop = _loop(data_dir, lists)
    loop.db.execute("SELECT COUNT(*) FROM served").fetchone()  # the connection, opened
    before = _peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    if path == "before":
        result = over_last_days(
            lambda since, w: reference_attribute(*loop.history(since), w), DAYS, window_hours
        )
    else:
        result = over_last_days(loop.attribution, DAYS, window_hours)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _peak_mb() - before
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "result": result.as_dict()}


def _child(data_dir: Path, lists: int, path: str, window_hours: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            path,
            "--dir",
            str(data_dir),
            "--lists",
            str(lists),
            "--window-hours",
            str(window_hours),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lists", type=int, default=1_000_000, help="a multiple of 200")
    parser.add_argument("--items", type=int, default=25, help="items per list")
    parser.add_argument("--window-hours", type=float, default=24.0)
    parser.add_argument("--measure", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.dir), args.lists, args.measure, args.window_hours)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as tmp:
        started = time.perf_counter()
        engagements = fill(Path(tmp), args.lists, args.items)
        size = (Path(tmp) / "loop.sqlite3").stat().st_size / 2**20
        print(
            f"{args.lists:,} lists of {args.items} items, {engagements:,} engagements "
            f"({size:.0f} MiB loop.sqlite3) generated in {time.perf_counter() - started:.0f} s"
        )
        runs = {p: _child(Path(tmp), args.lists, p, args.window_hours) for p in ("before", "after")}
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} cores")
    for name, label in (("before", "before: Python pass (peer)"), ("after", "after: SQLite sums")):
        run = runs[name]
        print(
            f"  {label:28s} {run['cpu']:7.2f} s CPU ({run['seconds']:7.2f} s wall)   "
            f"peak memory +{run['peak_mb']:7.1f} MiB"
        )
    before, after = runs["before"], runs["after"]
    print(
        f"  after / before: CPU time {after['cpu'] / before['cpu']:.3f}x, "
        f"memory {after['peak_mb'] / max(before['peak_mb'], 0.1):.3f}x"
    )
    same = before["result"] == after["result"]
    totals = {k: after["result"]["total"][k] for k in generated_totals(args.lists)}
    print(f"  same figures: {same}; totals {totals}")
    return 0 if same and totals == generated_totals(args.lists) else 1


if __name__ == "__main__":
    raise SystemExit(main())
