"""Offline quality: this engine against open-source peers, same split, same run.

Personalize's protocol (chalicelib.engine.evaluation): 90% of users train; for the other 10%, the
oldest 90% of their events are the input and the newest 10% the truth. Prints NDCG@5/10/25,
precision@10, MRR@25, coverage, fit seconds and per-user latency, with seen items excluded (the
SPEC's figure) and allowed.

    .venv/bin/python bench/quality.py [--dataset data/online-retail-ii] [--seed 42]

Peers: EASE (λ=200, plain fold-in), implicit ALS (64 factors, 15 iterations), implicit BPR,
implicit item-kNN (cosine and BM25), popularity. ALS and BPR cannot fold in a user they never
saw, so they are trained on the training users plus the held-out users' inputs (an advantage).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit is slower with OpenBLAS threads

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.engine.data import Interactions  # noqa: E402
from chalicelib.engine.evaluation import Split, evaluate, split  # noqa: E402
from chalicelib.engine.recipes import UserPersonalization, top_k  # noqa: E402
from chalicelib.engine.recipes.item_item import ease_weights  # noqa: E402
from chalicelib.engine.solution import fit  # noqa: E402

Recommend = Callable[[np.ndarray, int], np.ndarray]


def load(folder: Path) -> Interactions:
    rows = []
    with gzip.open(folder / "interactions.csv.gz", "rt", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            rows.append((r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], 0.0, float(r["TIMESTAMP"])))
    return Interactions.from_rows(rows)


def peers(parts: Split, n_items: int, exclude: bool) -> dict[str, tuple[float, Recommend]]:
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    x = parts.train.matrix()
    rows = np.repeat(np.arange(len(parts.inputs)), [len(h) for h in parts.inputs])
    cols = np.concatenate(parts.inputs)
    held = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(len(parts.inputs), n_items)
    )
    position = {id(h): j for j, h in enumerate(parts.inputs)}
    out: dict[str, tuple[float, Recommend]] = {}

    def allowed(h: np.ndarray) -> np.ndarray:
        mask = np.ones(n_items, dtype=bool)
        if exclude:
            mask[h] = False
        return mask

    started = time.perf_counter()
    b = ease_weights(x, 200.0)
    out["EASE (λ=200)"] = (
        time.perf_counter() - started,
        lambda h, k: top_k(b[h].sum(0), k, allowed(h)),
    )
    counts = np.asarray(x.sum(axis=0)).ravel()
    out["popularity"] = (0.0, lambda h, k: top_k(counts.copy(), k, allowed(h)))

    both = sp.vstack([x, held]).tocsr()
    ids = np.arange(x.shape[0], both.shape[0])
    for name, model in (
        ("implicit ALS", AlternatingLeastSquares(factors=64, iterations=15, random_state=0)),
        ("implicit BPR", BayesianPersonalizedRanking(factors=64, iterations=100, random_state=0)),
    ):
        started = time.perf_counter()
        model.fit(both, show_progress=False)
        seconds = time.perf_counter() - started
        recs, _ = model.recommend(ids, both[ids], N=25, filter_already_liked_items=exclude)
        out[name] = (seconds, lambda h, k, recs=recs: recs[position[id(h)]][:k])
    for name, cls in (
        ("implicit item-kNN cosine", CosineRecommender),
        ("implicit item-kNN BM25", BM25Recommender),
    ):
        model = cls(K=100)
        started = time.perf_counter()
        model.fit(x, show_progress=False)
        seconds = time.perf_counter() - started
        recs, _ = model.recommend(
            np.arange(held.shape[0]), held, N=25, filter_already_liked_items=exclude
        )
        out[name] = (seconds, lambda h, k, recs=recs: recs[position[id(h)]][:k])
    return out


COLUMNS = (
    ("NDCG@5", "normalized_discounted_cumulative_gain_at_5"),
    ("NDCG@10", "normalized_discounted_cumulative_gain_at_10"),
    ("NDCG@25", "normalized_discounted_cumulative_gain_at_25"),
    ("P@10", "precision_at_10"),
    ("MRR@25", "mean_reciprocal_rank_at_25"),
    ("cover", "coverage"),
)
OURS = "this engine (user-personalization)"


def row(name: str, cells: list[str]) -> str:
    return f"{name:36s}" + "".join(f"{c:>9s}" for c in cells)


def compare(parts: Split, n_items: int, exclude: bool) -> None:
    print(f"\nseen items {'excluded' if exclude else 'allowed'}:")
    print(row("model", [c for c, _ in COLUMNS] + ["fit s", "ms/user"]))
    started = time.perf_counter()
    params = UserPersonalization.Params(exclude_seen=exclude)  # type: ignore[call-arg]
    ours = fit("user-personalization", params, parts.train)
    models = {OURS: (time.perf_counter() - started, ours.recommend_indices)}
    models.update(peers(parts, n_items, exclude))
    ndcg10: dict[str, float] = {}
    for name, (fit_seconds, recommend) in models.items():
        started = time.perf_counter()
        m = evaluate(recommend, parts, n_items)
        per_user = (time.perf_counter() - started) / len(parts.inputs) * 1e3
        ndcg10[name] = m["normalized_discounted_cumulative_gain_at_10"]
        cells = [f"{m[key]:.4f}" for _, key in COLUMNS] + [f"{fit_seconds:.1f}", f"{per_user:.3f}"]
        print(row(name, cells))
    best = max((n for n in ndcg10 if n not in (OURS, "popularity")), key=ndcg10.__getitem__)
    ratio = ndcg10[OURS] / ndcg10[best]
    print(f"NDCG@10 against the best peer ({best}): {ratio:.2f}x (SPEC target ≥ 1.10x)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT / "data" / "online-retail-ii")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data = load(args.dataset)
    parts = split(data, seed=args.seed)
    print(
        f"{args.dataset.name}: {len(data):,} interactions, {data.n_users:,} users, "
        f"{data.n_items:,} items; {len(parts.inputs)} held-out users"
    )
    for exclude in (True, False):
        compare(parts, data.n_items, exclude)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
