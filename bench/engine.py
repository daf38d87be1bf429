"""The engine against open-source peers, same split, same run: quality, fit time, latency.

Personalize's protocol (chalicelib.engine.evaluation): 90% of users train; for the other 10%, the
oldest 90% of their events are the input and the newest 10% the truth. For each model it prints
NDCG@5/10/25, precision@10, MRR@25, coverage, fit seconds and the top-25 latency of one request
(one user, computed on demand: our fold-in + ranking; implicit's `recommend` for that user), with
seen items excluded (the SPEC's figure) and allowed; then the time of a whole solution version
(split, evaluation, final fit) with `chalicelib.engine.solution.train`.

    .venv/bin/python bench/engine.py                      # the bundled real shop, then 50k items
    .venv/bin/python bench/engine.py --only real|synthetic [--items 50000] [--interactions 400000]
                                     [--trials 12]

A second row of this engine turns its factor model on (`hidden_dimension=64`); a third is tuned
with its own HPO (optuna, `--trials` trials) on a validation
split of the training users only; the test users are never seen by the tuner.

Peers: EASE (λ=200, plain fold-in; skipped above 20k items: its items² matrix would need 10 GB at
50k), implicit ALS (64 factors, 15 iterations), implicit BPR (64 factors, 100 iterations),
implicit item-kNN (cosine and BM25, K=100), popularity. ALS and BPR cannot fold in a user they never
saw, so they are trained on the training users plus the held-out users' inputs (an advantage).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit is slower with OpenBLAS threads

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import generate  # noqa: E402

from chalicelib.config import HpoConfig  # noqa: E402
from chalicelib.engine.data import Interactions  # noqa: E402
from chalicelib.engine.evaluation import Split, evaluate, split  # noqa: E402
from chalicelib.engine.recipes import RECIPES, top_k  # noqa: E402
from chalicelib.engine.recipes.item_item import ease_weights  # noqa: E402
from chalicelib.engine.solution import fit, train  # noqa: E402
from chalicelib.engine.tuning import tune  # noqa: E402

Recommend = Callable[[np.ndarray, int], np.ndarray]
EASE_ITEM_LIMIT = 20_000
LATENCY_USERS = 300
FACTORS = 64  # the engine's row with its factor model turned on
OURS = "this engine (user-personalization)"
PEERS = (
    "EASE (λ=200)",
    "implicit ALS",
    "implicit BPR",
    "implicit item-kNN cosine",
    "implicit item-kNN BM25",
)


def load(folder: Path) -> Interactions:
    rows = []
    with gzip.open(folder / "interactions.csv.gz", "rt", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            value = float(r["EVENT_VALUE"]) if r.get("EVENT_VALUE") else None
            rows.append((r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], value, float(r["TIMESTAMP"])))
    return Interactions.from_rows(rows)


class Model:
    """One contender: fit seconds, a batch `lists(k)` for quality, `one(j, k)` for latency."""

    def __init__(self, seconds: float, one: Callable[[int, int], np.ndarray]) -> None:
        self.seconds = seconds
        self.one = one


def peers(parts: Split, n_items: int, exclude: bool) -> dict[str, Model]:
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    x = parts.train.matrix()
    x.data[:] = 1.0
    rows = np.repeat(np.arange(len(parts.inputs)), [len(h) for h in parts.inputs])
    held = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, np.concatenate(parts.inputs))),
        shape=(len(parts.inputs), n_items),
    )
    out: dict[str, Model] = {}

    def allowed(h: np.ndarray) -> np.ndarray:
        mask = np.ones(n_items, dtype=bool)
        if exclude:
            mask[h] = False
        return mask

    if n_items <= EASE_ITEM_LIMIT:
        started = time.perf_counter()
        b = ease_weights(x, 200.0)
        out["EASE (λ=200)"] = Model(
            time.perf_counter() - started,
            lambda j, k: top_k(b[parts.inputs[j]].sum(0), k, allowed(parts.inputs[j])),
        )
    counts = np.asarray(x.sum(axis=0)).ravel()
    out["popularity"] = Model(0.0, lambda j, k: top_k(counts.copy(), k, allowed(parts.inputs[j])))
    both = sp.vstack([x, held]).tocsr()
    offset = x.shape[0]
    for name, model in (
        ("implicit ALS", AlternatingLeastSquares(factors=64, iterations=15, random_state=0)),
        ("implicit BPR", BayesianPersonalizedRanking(factors=64, iterations=100, random_state=0)),
    ):
        started = time.perf_counter()
        model.fit(both, show_progress=False)
        out[name] = Model(
            time.perf_counter() - started,
            lambda j, k, m=model: m.recommend(
                offset + j, both[offset + j], N=k, filter_already_liked_items=exclude
            )[0],
        )
    for name, cls in (
        ("implicit item-kNN cosine", CosineRecommender),
        ("implicit item-kNN BM25", BM25Recommender),
    ):
        model = cls(K=100)
        started = time.perf_counter()
        model.fit(x, show_progress=False)
        out[name] = Model(
            time.perf_counter() - started,
            lambda j, k, m=model: m.recommend(0, held[j], N=k, filter_already_liked_items=exclude)[
                0
            ],
        )
    return out


COLUMNS = (
    ("NDCG@5", "normalized_discounted_cumulative_gain_at_5"),
    ("NDCG@10", "normalized_discounted_cumulative_gain_at_10"),
    ("NDCG@25", "normalized_discounted_cumulative_gain_at_25"),
    ("P@10", "precision_at_10"),
    ("MRR@25", "mean_reciprocal_rank_at_25"),
    ("cover", "coverage"),
)


def row(name: str, cells: list[str]) -> str:
    return f"| {name:49s} | " + " | ".join(f"{c:>7s}" for c in cells) + " |"


def latency_ms(model: Model, n_users: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    sample = rng.choice(n_users, size=min(LATENCY_USERS, n_users), replace=False)
    for j in sample[:20]:
        model.one(int(j), 25)  # warm up
    times = []
    for j in sample.tolist():
        started = time.perf_counter()
        model.one(j, 25)
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def _short(values: dict[str, object]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def hpo_ranges(n_items: int, trials: int) -> dict[str, object]:
    """Ranges as a solution's hpo_config would give them (EASE's λ only while EASE is used)."""
    continuous = [{"name": "recency_half_life", "min_value": 1.0, "max_value": 12.0}]
    if n_items <= EASE_ITEM_LIMIT:
        continuous.append({"name": "regularization", "min_value": 50.0, "max_value": 5000.0})
    return HpoConfig.model_validate(
        {
            "hpo_resource_config": {"max_number_of_training_jobs": trials},
            "algorithm_hyperparameter_ranges": {"continuous_hyperparameter_ranges": continuous},
        }
    ).model_dump()


def compare(parts: Split, n_items: int, exclude: bool, trials: int) -> dict[str, float]:
    print(f"\nseen items {'excluded' if exclude else 'allowed'}:\n")
    header = [c for c, _ in COLUMNS] + ["fit s", "p50 ms", "p99 ms"]
    print(row("model", header))
    print(row("-" * 49, ["-" * 7] * len(header)))
    started = time.perf_counter()
    params = RECIPES["user-personalization"].Params
    ours = fit("user-personalization", params(exclude_seen=exclude), parts.train)  # type: ignore[call-arg]
    models = {
        OURS: Model(
            time.perf_counter() - started,
            lambda j, k: ours.recommend_indices(parts.inputs[j], k),
        )
    }
    started = time.perf_counter()
    factored = fit(
        "user-personalization",
        params(exclude_seen=exclude, hidden_dimension=FACTORS),  # type: ignore[call-arg]
        parts.train,
    )
    models[f"this engine, hidden_dimension={FACTORS}"] = Model(
        time.perf_counter() - started,
        lambda j, k: factored.recommend_indices(parts.inputs[j], k),
    )
    if trials:
        started = time.perf_counter()
        tuned = tune(
            "user-personalization",
            {"exclude_seen": exclude},
            parts.train,
            hpo_ranges(n_items, trials),
        )
        best = {**tuned.best, "exclude_seen": exclude}
        model = fit("user-personalization", params.model_validate(best), parts.train)
        seconds = time.perf_counter() - started
        models[f"{OURS[:-1]}, HPO {trials} trials)"] = Model(
            seconds, lambda j, k, m=model: m.recommend_indices(parts.inputs[j], k)
        )
        print(f"(HPO on validation users chose {_short(tuned.best)})")
    models.update(peers(parts, n_items, exclude))
    position = {id(h): j for j, h in enumerate(parts.inputs)}
    ndcg10: dict[str, float] = {}
    for name, model in models.items():
        m = evaluate(lambda h, k, one=model.one: one(position[id(h)], k), parts, n_items)
        p50, p99 = latency_ms(model, len(parts.inputs))
        ndcg10[name] = m["normalized_discounted_cumulative_gain_at_10"]
        cells = [f"{m[key]:.4f}" for _, key in COLUMNS]
        cells += [f"{model.seconds:.1f}", f"{p50:.3f}", f"{p99:.3f}"]
        print(row(name, cells), flush=True)
    best = max((n for n in ndcg10 if n in PEERS), key=ndcg10.__getitem__)
    ratio = ndcg10[OURS] / ndcg10[best]
    target = "SPEC target ≥ 1.10x" if exclude else "reported, no target"
    print(f"\nNDCG@10 against the best peer ({best}): {ratio:.2f}x ({target})")
    factored = ndcg10[f"this engine, hidden_dimension={FACTORS}"] / ndcg10[best]
    print(f"with hidden_dimension={FACTORS}: {factored:.2f}x the best peer")
    return ndcg10


def solution_version(data: Interactions) -> None:
    started = time.perf_counter()
    result = train("user-personalization", {}, data)
    seconds = time.perf_counter() - started
    print(
        f"\nsolution version (split + evaluation + final fit) on {len(data):,} interactions, "
        f"{data.n_items:,} items: {seconds:.1f} s (SPEC target < 10 s on 2 cores); "
        f"NDCG@10 {result.metrics['normalized_discounted_cumulative_gain_at_10']:.4f}"
    )


def run(title: str, data: Interactions, both_policies: bool, trials: int) -> None:
    parts = split(data, seed=42)
    print(
        f"\n## {title}: {len(data):,} interactions, {data.n_users:,} users, "
        f"{data.n_items:,} items; {len(parts.inputs)} held-out users"
    )
    for exclude in (True, False) if both_policies else (True,):
        compare(parts, data.n_items, exclude, trials)
    solution_version(data)


def main() -> int:
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT / "data" / "online-retail-ii")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=400_000)
    parser.add_argument("--only", choices=["real", "synthetic"])
    parser.add_argument(
        "--trials", type=int, default=12, help="HPO trials for a tuned row; 0: none"
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; numpy {np.__version__}")
    if args.only != "synthetic":
        run(args.dataset.name, load(args.dataset), both_policies=True, trials=args.trials)
    if args.only != "real":
        data = Interactions.from_rows(generate(args.items, args.interactions))
        title = f"generated catalogue of {args.items:,} items"
        run(title, data, both_policies=False, trials=args.trials)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
