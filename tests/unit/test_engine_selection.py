"""Defaults from the data: at `train`, user-personalization chooses the knobs the configuration
leaves unset on a validation split of the training users, and keeps the ones it sets."""

from __future__ import annotations

import numpy as np
import pytest

from chalicelib.engine import training
from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import split
from chalicelib.engine.recipes import RECIPES
from chalicelib.engine.recipes.user_personalization import UserPersonalization
from chalicelib.engine.selection import validation_split
from chalicelib.engine.validation_scores import Components, ValidationScores, blend


def walks(n_users: int = 150, n_items: int = 60, length: int = 12, ordered: bool = True):  # type: ignore[no-untyped-def]
    """Users walk a chain of items (i, i+1, ...) from a random start; `ordered=False` gives the
    same items with their times shuffled, so order carries no signal."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        times = np.arange(length, dtype=float) if ordered else rng.permutation(length) * 1.0
        for j in range(length):
            item = (start + j) % n_items
            rows.append((f"u{u}", f"i{item}", "purchase", None, 1e9 + u * 1e4 + times[j]))
    return Interactions.from_rows(rows)


CONFIGS = [
    {"hidden_dimension": 0},
    {"ease_blend": 0.0, "recency_half_life": None},
    {"ease_blend": 1.0, "hidden_dimension": 8, "factor_blend": 0.3},
    {"exclude_seen": False, "repeat_weight": 1.0, "recency_half_life": 3.0},
    {"dense_item_limit": 10, "neighbours": 7},  # no EASE: neighbours and a factor model
    {"hidden_dimension": 8, "factor_model": "als", "recency_half_life": 2.0},
    {"dense_item_limit": 10, "factor_model": "als", "exclude_seen": False},
]


@pytest.mark.parametrize("values", CONFIGS)
def test_validation_scores_are_the_served_scores(values: dict[str, object]) -> None:
    data = walks()
    parts = split(data)
    params = RECIPES["user-personalization"].Params.model_validate(
        {"exploration_item_age_cut_off": 1e-3, **values}
    )
    recipe = UserPersonalization(params).fit(parts.train)  # type: ignore[arg-type]
    assert isinstance(recipe, UserPersonalization)
    scores = ValidationScores(Components.of(recipe), parts, params, data.n_items)
    batch = blend(scores, {**params.model_dump(), "lambda_scale": 1.0})
    assert scores.pool is None  # a small catalogue: whole rows, exact
    for row, history in zip(batch, parts.inputs, strict=True):
        np.testing.assert_allclose(row, recipe.scores(history), rtol=1e-4, atol=1e-6)


def test_train_chooses_on_training_users_and_stores_what_it_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = walks()
    seen: list[set[str]] = []
    real = training.choose

    def spy(given, params, train_users, progress=None):  # type: ignore[no-untyped-def]
        seen.append(set(train_users.user_ids[np.unique(train_users.users)].tolist()))
        return real(given, params, train_users, progress)

    monkeypatch.setattr(training, "choose", spy)
    result = training.train("user-personalization", {}, data)
    test_users = set(data.user_ids.tolist()) - set(
        data.user_ids[np.unique(split(data).train.users)].tolist()
    )
    assert test_users and not test_users & seen[0]
    assert result.choice is not None
    chosen = result.choice["chosen"]
    assert {"regularization", "recency_half_life", "ease_blend"} <= set(chosen)
    assert result.model.params.regularization == chosen["regularization"]
    assert (
        result.choice["validation_ndcg_at_10_chosen"]
        >= result.choice["validation_ndcg_at_10_defaults"]
    )


def test_knobs_set_in_the_configuration_are_kept_as_given() -> None:
    given = {"regularization": 123.0, "recency_half_life": 3.0, "ease_blend": 0.4}
    result = training.train("user-personalization", given, walks())
    params = result.model.params
    assert (params.regularization, params.recency_half_life, params.ease_blend) == (123.0, 3.0, 0.4)
    assert result.choice is not None and not set(given) & set(result.choice["chosen"])
    off = training.train("user-personalization", {"auto_tune": False}, walks())
    assert off.choice is None and off.model.params.regularization == 2000.0


def test_order_in_time_decides_the_recency_half_life() -> None:
    ordered = training.train("user-personalization", {}, walks(ordered=True))
    shuffled = training.train("user-personalization", {}, walks(ordered=False))
    assert ordered.choice is not None and shuffled.choice is not None
    short = ordered.choice["chosen"]["recency_half_life"]
    long = shuffled.choice["chosen"]["recency_half_life"]
    assert short is not None and short <= 2.0
    assert long is None or long > short  # a longer memory where order carries no signal


def test_validation_split_holds_out_training_users_only() -> None:
    data = walks()
    parts = split(data)
    validation = validation_split(parts.train)
    train_users = set(np.unique(parts.train.users).tolist())
    fit_users = set(np.unique(validation.train.users).tolist())
    held = train_users - fit_users
    assert held and held < train_users
    assert len(validation.inputs) == len(held)


@pytest.mark.parametrize("values", CONFIGS)
def test_pooled_rows_give_the_whole_rows_figure(
    values: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large catalogue rows are kept on a pool of items; where the pool holds every item
    (in its own order, padded), the NDCG@10 is the whole rows' one."""
    import chalicelib.engine.validation_scores as vs

    data = walks()
    parts = split(data)
    params = RECIPES["user-personalization"].Params.model_validate(
        {"exploration_item_age_cut_off": 1e-3, **values}
    )
    recipe = UserPersonalization(params).fit(parts.train)  # type: ignore[arg-type]
    cfg = {**params.model_dump(), "lambda_scale": 1.0}
    whole = ValidationScores(Components.of(recipe), parts, params, data.n_items)
    expected = whole.ndcg_at_10(blend(whole, cfg), params.exclude_seen)
    monkeypatch.setattr(vs, "FULL_ITEMS", 10)
    pooled = ValidationScores(Components.of(recipe), parts, params, data.n_items)
    pooled.use_pool(cfg)
    assert pooled.pool is not None
    assert pooled.ndcg_at_10(blend(pooled, cfg), params.exclude_seen) == pytest.approx(expected)


def test_a_given_als_rank_is_the_rank_the_choice_scores() -> None:
    """`factor_model = "als"` with its rank set: the knob choice fits ALS at that rank, so the
    candidates it scores are the model `train` serves."""
    given = {"factor_model": "als", "hidden_dimension": 8}
    result = training.train("user-personalization", given, walks())
    assert result.choice is not None and result.choice["validation_ndcg_at_10_chosen"] > 0
    assert result.model.recipe.factor_gram is not None
    assert result.model.recipe.factors.shape[1] == 8
