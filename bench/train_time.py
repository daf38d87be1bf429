"""The time of a whole solution version (`chalicelib.engine.training.train`: split, knob choice
on validation users, held-out evaluation, final fit) on the 400k-interaction sets, wall and CPU
seconds, with the load average beside each run (SPEC §7: under 10 s on 2 cores).

    .venv/bin/python bench/train_time.py [--runs 3] [--only shop|generated-50k]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import DATASETS  # noqa: E402

from chalicelib.engine.training import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["shop", "generated-50k"], action="append")
    args = parser.parse_args()
    for key in args.only or ["shop", "generated-50k"]:
        data = DATASETS[key][1]()
        for run in range(args.runs):
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.process_time()
            result = train("user-personalization", {}, data)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            chosen = (result.choice or {}).get("seconds", 0.0)
            print(
                f"{key} ({len(data):,} interactions, {data.n_items:,} items) run {run + 1}: "
                f"{wall:.1f} s wall, {cpu:.1f} CPU-s, knob choice {chosen:.1f} s; "
                f"load {load:.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
