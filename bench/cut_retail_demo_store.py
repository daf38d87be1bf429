"""How data/retail-demo-store/ was cut from the full set in ../shared/datasets (documented in its
ATTRIBUTION.md): every event of 2,000 of its 6,000 users, drawn at random with a fixed seed, so
the sample keeps the set's shape (event-type mix, history lengths, repeats) at a third of its size.
The item catalogue is kept whole; users.csv.gz keeps the sampled users.

    .venv/bin/python bench/cut_retail_demo_store.py [SOURCE_DIR] [--users 2000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "datasets" / "retail-demo-store"
TARGET = ROOT / "data" / "retail-demo-store"
SEED = 19


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path, nargs="?", default=SOURCE)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    with gzip.open(args.source / "users.csv.gz", "rt", encoding="utf-8") as fh:
        users = [row["USER_ID"] for row in csv.DictReader(fh)]
    rng = np.random.default_rng(SEED)
    kept = set(rng.choice(sorted(users), size=min(args.users, len(users)), replace=False).tolist())
    TARGET.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in ("interactions", "users"):
        with (
            gzip.open(args.source / f"{name}.csv.gz", "rt", encoding="utf-8") as src,
            # mtime=0: the same cut gives the same bytes
            gzip.GzipFile(TARGET / f"{name}.csv.gz", "wb", mtime=0) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as out,
        ):
            reader = csv.reader(src)
            header = next(reader)
            column = header.index("USER_ID")
            rows = [r for r in reader if r[column] in kept]
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            counts[name] = len(rows)
    shutil.copyfile(args.source / "items.csv.gz", TARGET / "items.csv.gz")
    shutil.copyfile(args.source / "LICENSE-MIT-0.txt", TARGET / "LICENSE-MIT-0.txt")
    print(f"{TARGET}: {counts['interactions']:,} events of {counts['users']:,} users")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
