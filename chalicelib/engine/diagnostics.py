"""What a solution version's evaluation shows beyond Personalize's metric names, for the report
(`python -m chalicelib report`): NDCG, precision and coverage at every cutoff 1..25, NDCG@10 by
the length of the held-out users' input history, and how popular the recommended items are
against the catalogue. Computed on the same held-out lists as the metrics (Personalize's
protocol, `evaluation.split`), so the figures agree with the metrics table at 5, 10 and 25.
Plain JSON-ready values: the local provider stores them beside the version's model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chalicelib.engine.evaluation import Split
from chalicelib.engine.metrics import ndcg_at_k, precision_at_k

MAX_K = 25
HISTORY_K = 10
# Input-history lengths of held-out users, as [low, high] bounds (None: no upper bound).
HISTORY_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 63), (64, None),
)  # fmt: skip
DECILES = 10


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]  # NaN: a user with no truth
    return round(float(np.mean(finite)), 6) if finite else None


def _at_k(lists: Sequence[Sequence[int]], parts: Split, n_items: int) -> dict[str, list[Any]]:
    ks = list(range(1, MAX_K + 1))
    ndcg, precision, coverage = [], [], []
    for k in ks:
        pairs = list(zip(lists, parts.truths, strict=True))
        ndcg.append(_mean([ndcg_at_k(recs, truth, k) for recs, truth in pairs]))
        precision.append(_mean([precision_at_k(recs, truth, k) for recs, truth in pairs]))
        distinct = {item for recs in lists for item in recs[:k]}
        coverage.append(round(len(distinct) / n_items, 6) if n_items else None)
    return {"k": ks, "ndcg": ndcg, "precision": precision, "coverage": coverage}


def _by_history(lists: Sequence[Sequence[int]], parts: Split) -> list[dict[str, Any]]:
    out = []
    lengths = [len(history) for history in parts.inputs]
    for low, high in HISTORY_BUCKETS:
        members = [j for j, n in enumerate(lengths) if n >= low and (high is None or n <= high)]
        if not members:
            continue
        label = str(low) if low == high else f"{low}+" if high is None else f"{low}-{high}"
        values = [ndcg_at_k(lists[j], parts.truths[j], HISTORY_K) for j in members]
        out.append({"history": label, "users": len(members), "ndcg_at_10": _mean(values)})
    return out


def _popularity(lists: Sequence[Sequence[int]], parts: Split, n_items: int) -> dict[str, Any]:
    """Items ranked by their interactions among the training users, cut into deciles (1: the most
    popular tenth of the catalogue): each decile's share of those interactions, and its share of
    the recommended slots (top 10 of every held-out user)."""
    counts = np.bincount(parts.train.items, minlength=n_items).astype(np.float64)
    order = np.argsort(-counts, kind="stable")
    decile = np.empty(n_items, dtype=np.int64)
    decile[order] = np.arange(n_items) * DECILES // max(n_items, 1)
    interactions = np.bincount(decile, weights=counts, minlength=DECILES)
    slots = np.asarray([i for recs in lists for i in recs[:HISTORY_K]], dtype=np.int64)
    recommended = np.bincount(decile[slots], minlength=DECILES) if len(slots) else np.zeros(10)
    rank = np.empty(n_items, dtype=np.float64)
    rank[order] = np.arange(n_items) / max(n_items - 1, 1)  # 0: the most popular item
    return {
        "decile": list(range(1, DECILES + 1)),
        "catalogue_share": [round(float(v), 6) for v in interactions / max(counts.sum(), 1)],
        "recommended_share": [round(float(v), 6) for v in recommended / max(len(slots), 1)],
        "mean_popularity_rank": round(float(rank[slots].mean()), 6) if len(slots) else None,
    }


def diagnose(lists: Sequence[Sequence[int]], parts: Split, n_items: int) -> dict[str, Any]:
    """The report's figures from the held-out users' top-25 lists (item indices)."""
    return {
        "users": len(lists),
        "at_k": _at_k(lists, parts, n_items),
        "by_history": _by_history(lists, parts),
        "popularity": _popularity(lists, parts, n_items),
    }
