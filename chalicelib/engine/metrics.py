"""Offline metrics under Amazon Personalize's names and definitions, one pure function each.

`recommended` is a ranked list, `relevant` the set of held-out items of one user.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence


def precision_at_k(
    recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int
) -> float:
    """Relevant items in the top k, divided by k (not by the list's length)."""
    return sum(1 for item in recommended[:k] if item in relevant) / k


def ndcg_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """DCG / ideal DCG, a hit at 1-based position p weighing 1/log2(1 + p)."""
    if not relevant:
        return math.nan
    dcg = sum(
        1.0 / math.log2(1 + pos)
        for pos, item in enumerate(recommended[:k], start=1)
        if item in relevant
    )
    ideal = sum(1.0 / math.log2(1 + pos) for pos in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def reciprocal_rank_at_k(
    recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int
) -> float:
    """1 / position of the first relevant item in the top k, 0 when there is none."""
    for pos, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            return 1.0 / pos
    return 0.0


def coverage(recommended_lists: Sequence[Sequence[Hashable]], n_items: int) -> float:
    """Distinct recommended items divided by distinct items in the catalogue."""
    if n_items == 0:
        return math.nan
    return len({item for recs in recommended_lists for item in recs}) / n_items
