"""Personalize's offline evaluation protocol and the metrics table it produces.

90% of users (all their events) train the model; for each of the other 10%, the oldest 90% of
their events are the input and the newest 10% (at least one event) are the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from chalicelib.engine.data import Interactions
from chalicelib.engine.metrics import coverage, ndcg_at_k, precision_at_k, reciprocal_rank_at_k
from chalicelib.vocabulary import Progress

CUTOFFS = (5, 10, 25)


@dataclass(frozen=True)
class Split:
    train: Interactions
    inputs: list[np.ndarray]  # per held-out user: distinct item indices, oldest first
    truths: list[set[int]]


def split(data: Interactions, holdout: float = 0.1, seed: int = 42) -> Split:
    rng = np.random.default_rng(seed)
    per_user = np.bincount(data.users, minlength=data.n_users)
    eligible = np.flatnonzero(per_user >= 2)  # a user needs an input and a truth
    n_test = max(1, round(holdout * data.n_users))
    test_users = rng.choice(eligible, size=min(n_test, len(eligible)), replace=False)
    is_test = np.zeros(data.n_users, dtype=bool)
    is_test[test_users] = True
    train = data.select(~is_test[data.users])

    test = data.select(is_test[data.users])
    order = np.lexsort((test.ts, test.users))
    users, items = test.users[order], test.items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    inputs, truths = [], []
    for chunk in np.split(items, bounds):
        cut = int(np.floor(0.9 * len(chunk)))
        cut = min(max(cut, 1), len(chunk) - 1)
        _, first = np.unique(chunk[:cut][::-1], return_index=True)
        inputs.append(chunk[:cut][::-1][np.sort(first)][::-1])  # distinct, oldest first
        truths.append(set(chunk[cut:].tolist()))
    return Split(train, inputs, truths)


# What is evaluated: the top `n` item indices for a history (a model's `recommend_indices`).
Recommender = Callable[[np.ndarray, int], Sequence[int] | np.ndarray]


def evaluate(
    recommend: Recommender, data: Split, n_items: int, progress: Progress | None = None
) -> dict[str, float]:
    """Metrics under Personalize's names; `recommend(history, k)` returns item indices.
    `progress` hears of the held-out users done, against their number."""
    k_max = max(CUTOFFS)
    lists = collect((recommend(hist, k_max) for hist in data.inputs), data, progress)
    return metrics_of(lists, data, n_items)


def recommend_lists(
    recommend: Callable[[np.ndarray, int], Sequence[int] | np.ndarray], data: Split
) -> list[list[int]]:
    """Each held-out user's top 25 (item indices), from their input history."""
    k_max = max(CUTOFFS)
    return collect((recommend(hist, k_max) for hist in data.inputs), data)


def collect(
    recommended: Iterable[Sequence[int] | np.ndarray],
    data: Split,
    progress: Progress | None = None,
) -> list[list[int]]:
    """The held-out users' lists as they come (in `data.inputs`' order), counted for
    `progress` against their number."""
    lists: list[list[int]] = []
    total = len(data.inputs)
    every = max(1, total // 100)
    for n, recs in enumerate(recommended, start=1):
        lists.append(list(recs))
        if progress and (n % every == 0 or n == total):
            progress("evaluating", n, total)
    return lists


def metrics_of(lists: Sequence[Sequence[int]], data: Split, n_items: int) -> dict[str, float]:
    """The metrics table of the held-out users' lists."""
    metrics: dict[str, float] = {}
    for k in CUTOFFS:
        metrics[f"normalized_discounted_cumulative_gain_at_{k}"] = _mean(
            ndcg_at_k(recs, truth, k) for recs, truth in zip(lists, data.truths, strict=True)
        )
        metrics[f"precision_at_{k}"] = _mean(
            precision_at_k(recs, truth, k) for recs, truth in zip(lists, data.truths, strict=True)
        )
    metrics["mean_reciprocal_rank_at_25"] = _mean(
        reciprocal_rank_at_k(recs, truth, 25)
        for recs, truth in zip(lists, data.truths, strict=True)
    )
    metrics["coverage"] = coverage(lists, n_items)
    return {name: round(value, 6) for name, value in sorted(metrics.items())}


PER_USER = {
    "normalized_discounted_cumulative_gain": ndcg_at_k,
    "precision": precision_at_k,
    "mean_reciprocal_rank": reciprocal_rank_at_k,
}


def per_user(recommend: Recommender, data: Split, metric: str) -> np.ndarray:
    """`metric` (a Personalize name, e.g. normalized_discounted_cumulative_gain_at_10) for each
    held-out user, NaN where undefined; empty for a metric of the whole list (coverage)."""
    name, _, k = metric.rpartition("_at_")
    function = PER_USER.get(name)
    if function is None or not k.isdigit():
        return np.zeros(0)
    values = [
        function(list(recommend(h, int(k))), t, int(k))
        for h, t in zip(data.inputs, data.truths, strict=True)
    ]
    return np.asarray(values, dtype=np.float64)


def _mean(values: object) -> float:
    arr = np.fromiter(values, dtype=np.float64)  # type: ignore[call-overload]
    return float(np.nanmean(arr)) if arr.size else float("nan")
