"""performHPO against the defaults on the test users of one dataset: the version trained with
its defaults (knobs chosen from the data) and the one trained with `performHPO`, same split.

    .venv/bin/python bench/hpo_check.py [--only shop] [--trials 12]
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

from engine import DATASETS, hpo_config  # noqa: E402

from chalicelib.engine.training import train  # noqa: E402

NDCG10 = "normalized_discounted_cumulative_gain_at_10"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(DATASETS), action="append")
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    for key in args.only or ["shop"]:
        data = DATASETS[key][1]()
        defaults = train("user-personalization", {}, data)
        started = time.perf_counter()
        tuned = train("user-personalization", {}, data, hpo=hpo_config(args.trials))
        seconds = time.perf_counter() - started
        assert tuned.tuning is not None
        print(
            f"{key}: test NDCG@10 {defaults.metrics[NDCG10]:.4f} with the defaults, "
            f"{tuned.metrics[NDCG10]:.4f} with performHPO ({args.trials} trials, {seconds:.0f} s, "
            f"load {os.getloadavg()[0]:.1f}); validation {tuned.tuning.defaults_value:.4f} at the "
            f"defaults, {tuned.tuning.best_value:.4f} chosen "
            f"({'defaults kept' if tuned.tuning.kept_defaults else tuned.tuning.best})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
