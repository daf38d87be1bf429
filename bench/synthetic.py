"""Generated shops of several shapes, in the Personalize CSV layout of data/online-retail-ii, so
that the engine's defaults are measured on data they were never chosen on (bench/engine.py).

Every shape shares one structure a recommender can learn: items fall into themes with skewed
popularity inside each theme; a user shops one to three themes, buys mostly there and sometimes
anything popular (5%). The shapes differ in what else the data holds:

- `themes` (the default, used for the 50k-item catalogue): events in time order, and a user
  re-buys one of their last five items now and then (10%);
- `unordered`: the same themes with no order in time (timestamps drawn at random within the
  user's span) and no repeats: recency carries no signal;
- `sequences`: each theme is a chain of items; a user mostly buys the item after their previous
  one (60%), so the order of events is the signal;
- `repeats`: each user keeps a few staples and re-buys one of them half of the time;
- `sparse`: most users have two to four events (a long tail of one-off shoppers).

All are seeded: the same arguments give the same rows.

    .venv/bin/python bench/synthetic.py OUT_DIR [--shape themes] [--items 50000]
                                        [--interactions 400000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np

HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "EVENT_VALUE", "TIMESTAMP"]
SHAPES = ("themes", "unordered", "sequences", "repeats", "sparse")
Row = tuple[str, str, str, float, float]


def generate(
    n_items: int = 50_000, n_interactions: int = 400_000, seed: int = 0, shape: str = "themes"
) -> list[Row]:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    rng = np.random.default_rng(seed)
    n_themes = max(1, n_items // 250)
    order = rng.permutation(n_items)  # theme t holds order[bounds[t]:bounds[t + 1]]
    bounds = np.linspace(0, n_items, n_themes + 1).astype(np.int64)
    mean_length = 3 if shape == "sparse" else 20
    n_users = max(25, n_interactions // mean_length)
    lengths = np.maximum(2, rng.geometric(1 / mean_length, size=n_users))
    if shape == "sparse":
        lengths = np.minimum(lengths, 4)
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
    if shape == "sequences":
        rank = _chains(rng, rank, size, theme, position)
    items = order[bounds[theme] + rank]
    anything = rng.random(n) < 0.05
    popular = 1.0 / np.arange(1, n_items + 1) ** 1.1
    items[anything] = rng.choice(n_items, size=int(anything.sum()), p=popular / popular.sum())
    if shape in ("themes", "repeats"):
        _repeat(rng, items, position, shape)
    gaps = rng.exponential(3 * 86_400, size=n)  # about one purchase every three days
    elapsed = np.cumsum(gaps)
    ts = rng.uniform(0, 300 * 86_400, size=n_users)[user] + elapsed - (elapsed - gaps)[first]
    if shape == "unordered":  # the same span, the order within it drawn at random
        ts = _shuffle_within(rng, ts, lengths)
    ts += 1_600_000_000.0
    return [
        (f"U{u}", f"I{i}", "purchase", 1.0, float(int(t)))
        for u, i, t in zip(user.tolist(), items.tolist(), ts.tolist(), strict=True)
    ]


def _chains(
    rng: np.random.Generator,
    rank: np.ndarray,
    size: np.ndarray,
    theme: np.ndarray,
    position: np.ndarray,
) -> np.ndarray:
    """Within a run of events in one theme, 60% follow the chain: the next item in the theme's
    order after the previous one (the chain wraps around)."""
    out = rank.copy()
    follow = rng.random(len(rank)) < 0.6
    for i in range(1, len(rank)):
        if follow[i] and position[i] > 0 and theme[i] == theme[i - 1]:
            out[i] = (out[i - 1] + 1) % size[i]
    return out


def _repeat(
    rng: np.random.Generator,
    items: np.ndarray,
    position: np.ndarray,
    shape: str,
) -> None:
    """`themes`: 10% of events re-buy one of the user's last five items. `repeats`: 50% re-buy
    one of the user's first four items (their staples)."""
    n = len(items)
    if shape == "themes":
        repeat = (rng.random(n) < 0.10) & (position >= 1)
        lag = np.minimum(rng.integers(1, 6, size=n), position)
        idx = np.flatnonzero(repeat)
        items[idx] = items[idx - lag[idx]]
        return
    staples = 4
    repeat = (rng.random(n) < 0.5) & (position >= staples)
    idx = np.flatnonzero(repeat)
    start = idx - position[idx]
    # A staple's pick is skewed to the first: people have a favourite.
    pick = (staples * rng.random(len(idx)) ** 2).astype(np.int64)
    items[idx] = items[start + pick]


def _shuffle_within(rng: np.random.Generator, ts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each user's timestamps permuted at random among that user's own events (a key in
    [u, u + 1) per event of user u keeps every user's events in their own block)."""
    keys = np.repeat(np.arange(len(lengths)), lengths) + rng.random(len(ts))
    return ts[np.argsort(keys)]


def write(folder: Path, rows: list[Row], n_items: int) -> None:
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
    parser.add_argument("--shape", choices=SHAPES, default="themes")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=400_000)
    args = parser.parse_args()
    rows = generate(args.items, args.interactions, shape=args.shape)
    write(args.out, rows, args.items)
    print(f"{args.out}: {len(rows):,} interactions, {args.items:,} items ({args.shape})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
