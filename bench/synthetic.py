"""A generated shop of any size, in the Personalize CSV layout of data/online-retail-ii, for the
benchmarks of large catalogues (50k items) that no bundled dataset reaches.

Structure a recommender can learn: items fall into `n_items // 250` themes with skewed popularity
inside each theme; a user shops one to three themes, buys mostly there, sometimes anything popular
(5%), and re-buys one of their last five items now and then (10%), in time order.

    .venv/bin/python bench/synthetic.py OUT_DIR [--items 50000] [--interactions 400000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np

HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "EVENT_VALUE", "TIMESTAMP"]


def generate(
    n_items: int = 50_000, n_interactions: int = 400_000, seed: int = 0
) -> list[tuple[str, str, str, float, float]]:
    rng = np.random.default_rng(seed)
    n_themes = max(1, n_items // 250)
    order = rng.permutation(n_items)  # theme t holds order[bounds[t]:bounds[t + 1]]
    bounds = np.linspace(0, n_items, n_themes + 1).astype(np.int64)
    n_users = max(25, n_interactions // 20)
    lengths = np.maximum(2, rng.geometric(1 / 20, size=n_users))
    lengths = np.round(lengths * n_interactions / lengths.sum()).astype(np.int64).clip(2)
    user = np.repeat(np.arange(n_users), lengths)
    n = len(user)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(n) - first
    # One to three themes per user; each event picks one of them.
    user_themes = rng.integers(0, n_themes, size=(n_users, 3))
    k = rng.integers(1, 4, size=n_users)
    theme = user_themes[user, (rng.random(n) * k[user]).astype(np.int64)]
    size = bounds[theme + 1] - bounds[theme]
    rank = (size * rng.random(n) ** 3).astype(np.int64)  # skewed to each theme's first items
    items = order[bounds[theme] + rank]
    anything = rng.random(n) < 0.05
    popular = 1.0 / np.arange(1, n_items + 1) ** 1.1
    items[anything] = rng.choice(n_items, size=int(anything.sum()), p=popular / popular.sum())
    repeat = (rng.random(n) < 0.10) & (position >= 1)
    lag = np.minimum(rng.integers(1, 6, size=n), position)
    idx = np.flatnonzero(repeat)
    items[idx] = items[idx - lag[idx]]
    gaps = rng.exponential(3 * 86_400, size=n)  # about one purchase every three days
    elapsed = np.cumsum(gaps)
    ts = rng.uniform(0, 300 * 86_400, size=n_users)[user] + elapsed - (elapsed - gaps)[first]
    ts += 1_600_000_000.0
    return [
        (f"U{u}", f"I{i}", "purchase", 1.0, float(int(t)))
        for u, i, t in zip(user.tolist(), items.tolist(), ts.tolist(), strict=True)
    ]


def write(folder: Path, rows: list[tuple[str, str, str, float, float]], n_items: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "interactions.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows((u, i, e, v, int(t)) for u, i, e, v, t in rows)
    with gzip.open(folder / "items.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ITEM_ID", "NAME", "PRICE"])
        writer.writerows((f"I{i}", f"Item {i}", f"{1 + i % 50}.99") for i in range(n_items))
    users = sorted({u for u, *_ in rows})
    with gzip.open(folder / "users.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["USER_ID", "COUNTRY"])
        writer.writerows((u, "UK") for u in users)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=400_000)
    args = parser.parse_args()
    rows = generate(args.items, args.interactions)
    write(args.out, rows, args.items)
    print(f"{args.out}: {len(rows):,} interactions, {args.items:,} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
