"""Recipes on small hand-checked data: EASE's closed form, co-occurrence neighbours with a
popularity discount, popularity counts, ranking, fold-in and the minimum-data rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from chalicelib.engine.data import Interactions, NotEnoughDataError
from chalicelib.engine.recipes import top_k
from chalicelib.engine.recipes.item_item import cooccurrence_neighbours, ease_weights
from chalicelib.engine.recipes.popularity import popularity
from chalicelib.engine.solution import SolutionModel, fit
from chalicelib.engine.training import train

X = sp.csr_matrix(
    np.array(
        [
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [0, 1, 1, 0],
            [1, 0, 0, 1],
            [1, 1, 0, 0],
        ],
        dtype=np.float32,
    )
)


def test_ease_matches_the_closed_form() -> None:
    lam = 2.0
    p = np.linalg.inv((X.T @ X).toarray() + lam * np.eye(4))
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    got = ease_weights(X, lam)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(got) == 0)


def test_cooccurrence_scores_and_popularity_discount() -> None:
    # counts: item0 4 users, item1 4, item2 2, item3 1; co(0,1)=3, co(0,2)=1, co(0,3)=1.
    idx, score = cooccurrence_neighbours(X, k=3, popularity_discount=0.5, min_count=1)
    assert idx[0].tolist() == [1, 3, 2]  # 3/√4√4=0.75, 1/√4√1=0.5, 1/√4√2≈0.354
    np.testing.assert_allclose(score[0], [0.75, 0.5, 1 / (2 * np.sqrt(2))], rtol=1e-5)
    # A stronger discount lifts the rarely bought item 3 to first place.
    idx, _ = cooccurrence_neighbours(X, k=3, popularity_discount=1.0, min_count=1)
    assert idx[0, 0] == 3


def test_min_cointeraction_count_drops_weak_pairs() -> None:
    idx, _ = cooccurrence_neighbours(X, k=3, popularity_discount=0.5, min_count=2)
    assert idx[0].tolist() == [1, -1, -1]  # only (0,1) is co-bought by 2+ users
    assert idx[3].tolist() == [-1, -1, -1]  # item 3: too little data, no neighbours


def test_popularity_counts_distinct_users() -> None:
    rows = [("u1", "a", "purchase", 1.0, 1.0)] * 5 + [
        ("u2", "a", "purchase", 1.0, 2.0),
        ("u2", "b", "purchase", 1.0, 3.0),
    ]
    counts = popularity(Interactions.from_rows(rows))
    assert counts.tolist() == [2.0, 1.0]


def test_top_k_skips_nan_and_disallowed_and_is_stable() -> None:
    scores = np.array([0.5, np.nan, 0.9, 0.5, 0.1], dtype=np.float32)
    allowed = np.array([True, True, False, True, True])
    assert top_k(scores, 3, allowed).tolist() == [0, 3, 4]
    assert top_k(scores, 10).tolist() == [2, 0, 3, 4]
    assert top_k(np.full(3, np.nan), 2).tolist() == []
    # Fewer numbers than k: the -inf of a seen item and the NaN are never among the k.
    seen = np.array([np.nan, 0.2, -np.inf, 0.7], dtype=np.float32)
    assert top_k(seen, 4).tolist() == [3, 1]
    assert top_k(seen, 4, np.array([True, True, True, False])).tolist() == [1]


def test_a_user_scored_twice_gets_the_same_scores() -> None:
    """A request writes to the scores it gets (seen items, masks): nothing it shares with the
    next request (the recency weights computed once per history length) may change."""
    model = fit("user-personalization", _params(), shop())
    history, weights = model.fold_in("u0")
    first = model.recipe.scores(history, weights)
    expected = first.copy()
    first[:] = -1.0
    assert np.array_equal(model.recipe.scores(history, weights), expected)
    assert np.array_equal(model.recipe.scores(history, None), model.recipe.scores(history))


def shop(n_users: int = 60, seed: int = 0) -> Interactions:
    """Two tastes: even users buy 12 of the items a0..a19, odd users 12 of b0..b19."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = "a" if u % 2 == 0 else "b"
        for j, item in enumerate(rng.choice(20, size=12, replace=False)):
            rows.append((f"u{u}", f"{group}{item}", "purchase", 1.0, 1e9 + u * 1e3 + j))
    return Interactions.from_rows(rows)


def test_too_little_data_is_refused_with_personalize_minimums() -> None:
    small = shop(n_users=40)  # 480 interactions
    with pytest.raises(NotEnoughDataError, match="1000 interactions"):
        small.check_trainable()
    rows = [("u1", f"i{j}", "purchase", 1.0, float(j)) for j in range(1000)]
    rows += [(f"v{u}", "i1", "purchase", 1.0, 1.0) for u in range(30)]  # one event each
    with pytest.raises(NotEnoughDataError, match="25 users"):
        Interactions.from_rows(rows).check_trainable()


@pytest.mark.parametrize("dense_item_limit", [10_000, 1])  # EASE, then sparse neighbours
def test_user_personalization_folds_in_new_events(dense_item_limit: int) -> None:
    model = fit(
        "user-personalization",
        _params(dense_item_limit=dense_item_limit),
        shop(),
    )
    a_side = model.history("u0")
    recs = model.recommend(a_side, 5, None).item_ids
    assert recs and all(r.startswith("a") for r in recs)
    assert not set(recs) & set(model.item_ids[a_side].tolist())  # seen items excluded
    # A brand-new user is served from one posted event; the next event changes the list.
    first = model.recommend(model.history("new", ["b1"]), 5, None).item_ids
    assert all(r.startswith("b") for r in first)
    then = model.recommend(model.history("new", ["b1", "b2"]), 5, None).item_ids
    assert "b2" not in then and then != first


def test_solution_model_round_trips_through_npz(tmp_path: Path) -> None:
    model = fit("user-personalization", _params(), shop())
    path = tmp_path / "v1.npz"
    model.save(path, {"version_id": "v1"})
    loaded = SolutionModel.load(path)  # the file alone: recipe, knobs and events are inside
    assert (loaded.recipe_name, loaded.params) == (model.recipe_name, model.params)
    assert loaded.metadata == {"version_id": "v1"}
    history = model.history("u3")
    assert loaded.recommend(history, 10, None) == model.recommend(history, 10, None)
    assert loaded.rank(history, ["b1", "zzz", "a1"]) == model.rank(history, ["b1", "zzz", "a1"])


def test_similar_items_and_ranking() -> None:
    data = shop(n_users=80)
    sim = fit("similar-items", _params("similar-items"), data)
    related = sim.related("a1", 5, None)
    assert related and all(r.startswith("a") and r != "a1" for r in related)
    assert sim.related("unknown", 5, None) is None
    ranker = fit("personalized-ranking", _params("personalized-ranking"), data)
    ranked = ranker.rank(ranker.history("u1"), ["a1", "b1", "new-item"]).item_ids
    assert ranked == ["b1", "a1", "new-item"]


def test_training_evaluates_then_fits_on_everything() -> None:
    data = shop(n_users=100)
    result = train("user-personalization", {}, data)
    assert result.counts == {
        "interactions": 1200,
        "training_interactions": 1200,
        "users": 100,
        "items": 40,
    }
    assert result.metrics["precision_at_5"] > 0.0
    assert set(result.model.user_ids.tolist()) == set(data.user_ids.tolist())
    with pytest.raises(ValueError, match="unknown recipe"):
        train("hrnn", {}, data)
    with pytest.raises(ValueError, match="regularization"):
        train("user-personalization", {"regularization": -1}, data)


def _params(recipe: str = "user-personalization", **values: object):  # type: ignore[no-untyped-def]
    from chalicelib.engine.recipes import RECIPES

    return RECIPES[recipe].Params.model_validate(values)


def test_recommend_and_rank_return_each_items_score() -> None:
    model = fit("user-personalization", _params(), shop())
    history = model.history("u3")
    recs = model.recommend(history, 8, None)
    assert len(recs.item_ids) == len(recs.scores) == 8
    assert recs.scores == sorted(recs.scores, reverse=True)  # type: ignore[type-var]
    expected = model.recipe.scores(history)
    for item, score in zip(recs.item_ids, recs.scores, strict=True):
        assert score == pytest.approx(float(expected[model.item_index[item]]), abs=1e-6)
    ranked = model.rank(history, ["zzz", *reversed(recs.item_ids[:3])])
    assert ranked.item_ids == [*recs.item_ids[:3], "zzz"]
    assert ranked.scores == [*recs.scores[:3], None]  # an unknown item has no score
