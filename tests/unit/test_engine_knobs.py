"""Training knobs in Personalize's names: event type, value threshold and weights, user-history
percentiles, seen-item policy, exploration of new items, similar-items' fallback."""

from __future__ import annotations

import numpy as np
import pytest

from chalicelib.config import EventOptions, EventParameters
from chalicelib.engine.data import Interactions, NotEnoughDataError
from chalicelib.engine.preparation import apply_events, apply_history_percentiles
from chalicelib.engine.recipes import RECIPES
from chalicelib.engine.solution import fit
from chalicelib.engine.training import train

DAY = 86_400.0
ALL_USERS = {"max_user_history_length_percentile": 1.0}


def params(recipe: str = "user-personalization", **values: object):  # type: ignore[no-untyped-def]
    return RECIPES[recipe].Params.model_validate(values)


def mixed() -> Interactions:
    return Interactions.from_rows(
        [
            ("u1", "a", "purchase", 3.0, 1.0),
            ("u1", "b", "view", None, 2.0),
            ("u2", "a", "Purchase", 1.0, 3.0),
            ("u2", "c", "click", 5.0, 4.0),
        ]
    )


def test_event_type_keeps_one_type_case_insensitively() -> None:
    kept = apply_events(mixed(), EventOptions(event_type="purchase"))
    assert kept.event_types.tolist() == ["purchase", "Purchase"]


def test_event_value_threshold_drops_low_values_and_keeps_events_without_one() -> None:
    kept = apply_events(mixed(), EventOptions(event_value_threshold=2.0))
    assert kept.item_ids[kept.items].tolist() == ["a", "b", "c"]  # u2's purchase (1.0) dropped


def test_event_weights_drop_unlisted_types_and_weigh_the_matrix() -> None:
    options = EventOptions(
        events=(
            EventParameters(event_type="purchase", weight=1.0),
            EventParameters(event_type="view", weight=0.25),
        )
    )
    kept = apply_events(mixed(), options)
    assert "click" not in kept.event_types.tolist()
    x = kept.matrix().toarray()
    assert x[0].tolist() == [1.0, 0.25, 0.0]  # u1: purchase a, view b
    assert options.weight_of("VIEW") == 0.25 and options.weight_of("click") == 0.0


def test_history_percentiles_leave_heavy_users_out_of_training() -> None:
    rows = [(f"u{u}", f"i{j}", "purchase", None, float(j)) for u in range(10) for j in range(3)]
    rows += [("heavy", f"i{j}", "purchase", None, float(j)) for j in range(50)]
    data = Interactions.from_rows(rows)
    kept = apply_history_percentiles(data, 0.0, 0.9)
    assert "heavy" not in set(kept.user_ids[np.unique(kept.users)].tolist())
    assert len(kept) == 30
    # Training leaves the heavy user out of the statistics, serving still knows their history.
    model = fit("popularity-count", params("popularity-count", **ALL_USERS), data)
    assert model.popularity.max() == 11.0
    model = fit(
        "popularity-count", params("popularity-count", max_user_history_length_percentile=0.9), data
    )
    assert model.popularity.max() == 10.0
    assert len(model.history("heavy")) == 50


def shop(with_new_item: bool = False) -> Interactions:
    """Users buy pairs (a_k, b_k); a brand-new item `fresh` was bought once, yesterday."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(200):
        for j, k in enumerate(rng.choice(30, size=3, replace=False)):
            t = 1e9 + u * DAY / 4 + j * 10  # 50 days of history
            rows += [(f"u{u}", f"a{k}", "purchase", None, t), (f"u{u}", f"b{k}", "view", None, t)]
    last = max(r[4] for r in rows)
    if with_new_item:
        rows.append(("u0", "fresh", "purchase", None, last + DAY))
        rows.append(("u0", "a0", "purchase", None, last + DAY))
        rows.append(("u1", "a1", "purchase", None, last + 3 * DAY))  # the newest event
    return Interactions.from_rows(rows)


def test_fold_in_weighs_posted_events_by_type() -> None:
    options = EventOptions(events=(EventParameters(event_type="purchase", weight=1.0),))
    data = apply_events(shop(), options)
    model = fit("user-personalization", params(), data, options)
    history, weights = model.fold_in("new", [("a1", "purchase"), ("a2", "view")])
    assert model.item_ids[history].tolist() == ["a1"]  # views weigh 0 in this solution
    assert weights.tolist() == [1.0]


def test_seen_item_policy_is_an_explicit_setting() -> None:
    data = shop()
    history = fit("user-personalization", params(), data).history("u0")
    seen = set(history.tolist())
    excluded = fit("user-personalization", params(exclude_seen=True), data)
    assert not seen & set(excluded.recommend_indices(history, 20).tolist())
    allowed = fit("user-personalization", params(exclude_seen=False, repeat_weight=1.0), data)
    assert seen & set(allowed.recommend_indices(history, 6).tolist())


def test_exploration_lifts_a_new_item_with_little_data() -> None:
    data = shop(with_new_item=True)
    ranks = {}
    for weight in (0.0, 1.0):
        model = fit("user-personalization", params(exploration_weight=weight, **ALL_USERS), data)
        order = model.recommend(model.history("u5", ["a0"]), 60, None).item_ids
        ranks[weight] = order.index("fresh")
    assert ranks[1.0] < ranks[0.0]
    # Items older than the cut-off get no bonus.
    model = fit(
        "user-personalization",
        params(exploration_weight=1.0, exploration_item_age_cut_off=1.5, **ALL_USERS),
        data,
    )
    assert (
        model.recommend(model.history("u5", ["a0"]), 60, None).item_ids.index("fresh") == ranks[0.0]
    )


def test_similar_items_completes_short_lists_with_popular_items() -> None:
    data = shop(with_new_item=True)
    model = fit("similar-items", params("similar-items", min_cointeraction_count=2), data)
    related = model.related("fresh", 5, None)
    assert related is not None and len(related) == 5 and "fresh" not in related
    strict = fit(
        "similar-items",
        params("similar-items", min_cointeraction_count=2, popular_fallback=False),
        data,
    )
    assert strict.related("fresh", 5, None) == []
    assert strict.related("a3", 1, None) == ["b3"]  # always bought together


def test_personalized_ranking_keeps_seen_items_and_does_not_explore() -> None:
    p = params("personalized-ranking")
    assert p.exclude_seen is False and p.exploration_weight == 0.0


def test_too_little_data_is_counted_after_event_filtering() -> None:
    data = shop()  # 1,200 events, half of them views
    train("user-personalization", {}, data)
    with pytest.raises(NotEnoughDataError, match="at least 1000 interactions; there are 600"):
        train("user-personalization", {}, data, events=EventOptions(event_type="purchase"))


def test_repeat_rates_shrink_towards_the_catalogue_share() -> None:
    from chalicelib.engine.recipes.user_personalization import repeat_rates

    rows = [(f"u{u}", "soap", "purchase", None, float(t)) for u in range(20) for t in (1, 2)]
    rows += [(f"u{u}", "lamp", "purchase", None, 1.0) for u in range(20)]
    lamp, soap = repeat_rates(Interactions.from_rows(rows)).tolist()  # item ids sorted
    assert soap > 0.8
    assert lamp < 0.2


def test_allowing_repeats_lengthens_the_default_memory() -> None:
    assert params().recency_half_life == 2.0
    assert params(exclude_seen=False).recency_half_life == 8.0
    assert params(exclude_seen="false").recency_half_life == 8.0
    assert params(exclude_seen=False, recency_half_life=2.0).recency_half_life == 2.0
    assert params("personalized-ranking").recency_half_life == 8.0


def themed(users: int = 800, themes: int = 8, per_theme: int = 30) -> Interactions:
    """Each shopper buys 4 items of one theme: items of a theme share buyers only in part."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(users):
        theme = u % themes
        for n, item in enumerate(rng.choice(per_theme, size=4, replace=False)):
            rows.append((f"u{u}", f"t{theme}-{item}", "purchase", None, float(u * 10 + n)))
    return Interactions.from_rows(rows)


def test_hidden_dimension_adds_a_factor_model_that_finds_a_theme_without_co_purchases() -> None:
    data = themed()
    sparse = {"dense_item_limit": 1, "exploration_weight": 0.0, **ALL_USERS}
    plain = fit("user-personalization", params(hidden_dimension=0, **sparse), data)  # neighbours
    factored = fit("user-personalization", params(hidden_dimension=8, **sparse), data)
    assert plain.recipe.factors is None
    assert factored.recipe.factors.shape == (data.n_items, 8)

    seed = plain.item_index["t0-0"]
    x = data.matrix().toarray() > 0
    bought_with_seed = x[x[:, seed]].any(axis=0)
    theme = np.array([i.startswith("t0-") for i in data.item_ids.tolist()])
    never_together = np.flatnonzero(theme & ~bought_with_seed)
    assert len(never_together)  # the planted case exists
    history = np.asarray([seed])
    # Neighbours alone cannot score a theme item never bought with the seed...
    assert (plain.recipe.scores(history)[never_together] <= 0).all()
    # ...the factor model ranks every item of the seed's theme above every other theme's item.
    scores = factored.recipe.scores(history)
    others = np.flatnonzero(~theme)
    assert scores[never_together].min() > scores[others].max()


def test_a_factor_model_survives_saving_and_loading(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.engine.solution import SolutionModel

    data = themed()
    model = fit("user-personalization", params(hidden_dimension=8, **ALL_USERS), data)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = SolutionModel.load(path)
    history = np.asarray([1, 5, 9])
    assert np.allclose(loaded.recipe.scores(history), model.recipe.scores(history))


def test_without_ease_a_factor_model_is_on_by_default() -> None:
    from chalicelib.engine.recipes.user_personalization import SPARSE_RANK

    data = themed()
    large = fit("user-personalization", params(dense_item_limit=1, **ALL_USERS), data)
    assert large.recipe.factors.shape == (data.n_items, SPARSE_RANK)
    small = fit("user-personalization", params(**ALL_USERS), data)  # EASE fits: no factors
    assert small.recipe.weights is not None and small.recipe.factors is None


@pytest.mark.parametrize("values", [{"hidden_dimension": 8}, {"dense_item_limit": 1}, {}])
def test_batched_recommendations_are_the_one_at_a_time_ones(values: dict[str, object]) -> None:
    """`train` scores its held-out users in batches (the factor products as one matrix
    product): each list is the one a single request gets."""
    data = themed()
    model = fit("user-personalization", params(**values, **ALL_USERS), data)
    rng = np.random.default_rng(5)
    histories = [rng.choice(data.n_items, size=int(n), replace=False) for n in range(0, 9)]
    histories += [np.asarray([3]), np.asarray([7, 1, 40])] * 150  # more than one batch
    lists = list(model.recommend_many(histories, 25))
    for history, listed in zip(histories, lists, strict=True):
        np.testing.assert_array_equal(listed, model.recommend_indices(history, 25))


def test_als_factor_model_folds_in_a_history_and_survives_saving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`factor_model="als"`: implicit's ALS item factors, a user solved for from the history at
    request time: three items of a theme put only that theme's items in the top 20 (there are
    30), and a saved model scores the same once loaded."""
    from chalicelib.engine.solution import SolutionModel

    data = themed()
    values = {"dense_item_limit": 1, "exploration_weight": 0.0, **ALL_USERS}
    model = fit(
        "user-personalization", params(factor_model="als", factor_blend=1.0, **values), data
    )
    assert model.recipe.factors.shape == (data.n_items, 32)
    assert model.recipe.factor_gram.shape == (32, 32)
    theme = np.array([i.startswith("t0-") for i in data.item_ids.tolist()])
    history = np.asarray([model.item_index[f"t0-{n}"] for n in range(3)])
    best = model.recommend_indices(history, 20)
    assert theme[best].all() and not set(best) & set(history.tolist())
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = SolutionModel.load(path)
    history = np.asarray([1, 5, 9])
    assert np.allclose(loaded.recipe.scores(history), model.recipe.scores(history))
