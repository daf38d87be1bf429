"""Offline metrics and Personalize's evaluation split, pinned to the documentation's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import evaluate, split
from chalicelib.engine.metrics import coverage, ndcg_at_k, precision_at_k, reciprocal_rank_at_k


def test_personalize_documentation_worked_example() -> None:
    # Five recommendations, the user's held-out items are the 2nd and the 5th.
    recs = ["a", "hit-1", "b", "c", "hit-2"]
    truth = {"hit-1", "hit-2"}
    assert ndcg_at_k(recs, truth, 5) == pytest.approx(0.6241, abs=5e-5)
    assert precision_at_k(recs, truth, 5) == pytest.approx(0.4)
    assert reciprocal_rank_at_k(recs, truth, 25) == pytest.approx(0.5)


def test_precision_divides_by_k_not_by_the_list_length() -> None:
    assert precision_at_k(["x"], {"x"}, 10) == pytest.approx(0.1)


def test_ndcg_is_one_for_a_perfect_list_and_zero_without_hits() -> None:
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "d"], {"a"}, 2) == 0.0
    # More truths than K: the ideal list is K hits long, so K hits still score 1.
    assert ndcg_at_k(["a", "b"], {"a", "b", "c"}, 2) == pytest.approx(1.0)


def test_reciprocal_rank_counts_only_the_first_hit_within_k() -> None:
    assert reciprocal_rank_at_k(["x", "a", "b"], {"a", "b"}, 25) == pytest.approx(0.5)
    assert reciprocal_rank_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_coverage_is_distinct_recommended_items_over_catalogue() -> None:
    assert coverage([[1, 2], [2, 3], [3]], 6) == pytest.approx(0.5)
    assert math.isnan(coverage([], 0))


def _events(n_users: int, per_user: int) -> Interactions:
    """User u buys items u*100 + 0..per_user-1 in that order, one a minute."""
    rows = [
        (f"u{u:03d}", f"i{u * 100 + j:05d}", "purchase", 1.0, 1e9 + u * 1e4 + 60.0 * j)
        for u in range(n_users)
        for j in range(per_user)
    ]
    return Interactions.from_rows(rows)


def test_split_holds_out_ten_percent_of_users_with_oldest_90_percent_as_input() -> None:
    data = _events(200, 20)
    parts = split(data, seed=3)
    assert len(parts.inputs) == 20  # 10% of users
    train_users = set(np.unique(parts.train.users).tolist())
    assert len(train_users) == 180
    for history, truth in zip(parts.inputs, parts.truths, strict=True):
        ids = data.item_ids[history].tolist()
        owner = int(ids[0][1:]) // 100
        assert f"u{owner:03d}" not in set(data.user_ids[list(train_users)].tolist())
        # Oldest 18 events are the input (oldest first), newest 2 the truth.
        assert ids == [f"i{owner * 100 + j:05d}" for j in range(18)]
        assert sorted(data.item_ids[list(truth)].tolist()) == [
            f"i{owner * 100 + j:05d}" for j in (18, 19)
        ]


def test_split_keeps_at_least_one_event_each_side_for_short_histories() -> None:
    parts = split(_events(40, 2), seed=1)
    assert all(len(h) == 1 for h in parts.inputs)
    assert all(len(t) == 1 for t in parts.truths)


def test_split_depends_only_on_the_seed() -> None:
    data = _events(100, 5)
    a, b, c = split(data, seed=9), split(data, seed=9), split(data, seed=10)
    assert [h.tolist() for h in a.inputs] == [h.tolist() for h in b.inputs]
    assert [h.tolist() for h in a.inputs] != [h.tolist() for h in c.inputs]


def test_evaluate_reports_personalize_metric_names() -> None:
    data = _events(100, 10)
    parts = split(data, seed=2)
    truth_first = {id(h): sorted(t) for h, t in zip(parts.inputs, parts.truths, strict=True)}
    metrics = evaluate(lambda h, k: truth_first[id(h)][:k], parts, data.n_items)
    assert set(metrics) == {
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
    }
    assert metrics["normalized_discounted_cumulative_gain_at_10"] == pytest.approx(1.0)
    assert metrics["mean_reciprocal_rank_at_25"] == pytest.approx(1.0)
    assert metrics["precision_at_5"] == pytest.approx(1 / 5)  # one truth per user, K = 5
    assert metrics["coverage"] == pytest.approx(10 / data.n_items)
