"""`user-personalization` and `personalized-ranking`: an item-to-item model scored by folding in
the user's current history.

Fold-in makes it real time: a user's score vector is computed from their distinct items at request
time (trained history plus events posted since), so new events change the next recommendations with
no retraining and a brand-new user is served after a single event. While the catalogue fits a
dense items × items matrix, scores blend EASE with co-occurrence neighbours (`ease_blend`); above
`dense_item_limit` items only the sparse neighbours remain, whose memory grows with items × k.
Without EASE (and wherever `hidden_dimension` asks for one) a factor model (PureSVD, or
implicit-feedback ALS with fold-in: `factor_model`) is blended in with weight `factor_blend`: it
finds items that share a theme with the history without ever having been bought together, which
sparse neighbours cannot (bench/engine.py, on the 50k and sparse sets).

Exploration (Personalize's `exploration_weight`, `exploration_item_age_cut_off`): items first seen
within the cut-off (days before the newest training event) get a bonus that shrinks with the data
they already have, so new items with few interactions reach some lists before they earn a score.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from chalicelib.engine.data import Interactions
from chalicelib.engine.recipes.base import RecipeParams
from chalicelib.engine.recipes.implicit_als import als_factors, fold_in
from chalicelib.engine.recipes.item_item import (
    binary_gram,
    cooccurrence_neighbours,
    ease_weights,
    gram_matrix,
    item_factors,
    neighbour_scores,
)
from chalicelib.engine.recipes.popularity import popularity

DAY = 86_400.0
REPEATS_HALF_LIFE = 8.0
# The factor model's rank where EASE cannot be used (above `dense_item_limit` items), chosen on
# validation users of the 50k set (bench/factor_rank.py: NDCG@10 0.0343 without factors; 0.0741
# at rank 32, 0.0807 at 48, 0.0817 at 64): 32 keeps the engine's top-25 ahead of implicit ALS's
# `recommend`, whose own rank-64 product is the same work as ours at 64.
SPARSE_RANK = 32


class UserPersonalizationParams(RecipeParams):
    # True: at `train`, the knobs the configuration leaves unset (λ, blends, recency, neighbour
    # count, factor rank, repeat boost, seen-item policy where repeats dominate) are chosen on a
    # validation split of the training users (chalicelib.engine.selection); the values below are
    # where that search starts. False: the values below are used as they are.
    auto_tune: bool = True
    # EASE's λ. Chosen on the sample's validation users (a split of the training users, never the
    # test users): NDCG@10 0.1148 at λ=1000, 0.1184 at 2000, 0.1212 at 5000 with seen items
    # excluded, at a cost in coverage (0.32, 0.29, 0.25); 2000 is the balance. Larger data need
    # a larger λ: `performHPO` tunes it.
    regularization: float = Field(default=2000.0, gt=0)
    # Seen-item policy: True never recommends an item the user already has (Personalize's
    # default for user-personalization); False allows repeats, boosted by `repeat_weight`.
    exclude_seen: bool = True
    max_history: int = Field(default=200, ge=1, le=10_000)
    dense_item_limit: int = Field(default=20_000, ge=1)
    # While EASE is used, scores blend EASE (this weight) with co-occurrence neighbours (the rest),
    # each scaled to its best item. Chosen on validation users of the sample: NDCG@10 0.1184 EASE
    # alone, 0.1247 neighbours alone, 0.1269 at 0.5 (seen excluded); 0.1694 / 0.1678 / 0.1785
    # with repeats allowed. 1.0 is EASE alone, 0.0 neighbours alone.
    ease_blend: float = Field(default=0.5, ge=0.0, le=1.0)
    neighbours: int = Field(default=100, ge=1, le=1000)
    # Weight of a history item halves every `recency_half_life` more recent distinct items; recent
    # purchases predict the next ones best (validation NDCG@10 0.1184 at 2, 0.1140 at 3, 0.0981
    # with None, which weighs the whole history equally). With repeats
    # allowed the default is REPEATS_HALF_LIFE: a longer memory predicts re-purchases (validation
    # NDCG@10 0.1616 at 6, 0.1657 at 8).
    recency_half_life: float | None = Field(default=2.0, gt=0)
    # With repeats allowed, a seen item also scores `repeat_weight` × its recency weight × the
    # user's best score × the item's repeat rate: people re-buy what they bought recently, and
    # consumables more than one-offs (validation NDCG@10 0.1657 at 0, 0.1694 at 0.5, 0.1578 at 2).
    repeat_weight: float = Field(default=0.5, ge=0.0, le=10.0)
    exploration_weight: float = Field(default=0.3, ge=0.0, le=1.0)
    exploration_item_age_cut_off: float = Field(default=30.0, gt=0.0)  # days
    # Personalize's HRNN knob (on AWS it goes to Personalize), here the rank of a PureSVD factor
    # model; 0: none. None (the default) means SPARSE_RANK above `dense_item_limit` items and
    # none below: on the real shop EASE + neighbours is better alone (NDCG@10 0.1422 without,
    # 0.1229 with rank 64; bench/engine.py), and a rank-r product costs a request r × items.
    hidden_dimension: int | None = Field(default=None, ge=0, le=512)
    # Weight of the factor scores against the rest, each scaled to its best item. Chosen on
    # validation users of the 50k set at the default rank 32 (bench/factor_rank.py): NDCG@10
    # 0.0701 at 0.5, 0.0741 at 0.7, 0.0702 at 0.8, 0.0584 factors alone; coverage falls as the
    # weight grows (0.40, 0.24, 0.15, 0.06).
    factor_blend: float = Field(default=0.7, ge=0.0, le=1.0)
    # Which factor model: "svd" (PureSVD, rank `hidden_dimension`) or "als" (implicit-feedback
    # ALS with fold-in, the same rank; chalicelib.engine.recipes.implicit_als). At `train` it is
    # chosen on validation users where ALS fits the training budget (selection.ALS_INTERACTIONS).
    factor_model: Literal["svd", "als"] = "svd"

    @model_validator(mode="before")
    @classmethod
    def _longer_memory_for_repeats(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "recency_half_life" in data:
            return data
        exclude = data.get("exclude_seen", cls.model_fields["exclude_seen"].default)
        if str(exclude).lower() in ("false", "0"):
            return {**data, "recency_half_life": REPEATS_HALF_LIFE}
        return data


def recency_weights(n: int, half_life: float | None) -> np.ndarray:
    """Weights of `n` history items, oldest first: the newest weighs 1, each older one less."""
    if half_life is None:
        return np.ones(n, dtype=np.float32)
    return (0.5 ** (np.arange(n - 1, -1, -1) / half_life)).astype(np.float32)


@functools.lru_cache(maxsize=1024)
def _shared_recency_weights(n: int, half_life: float | None) -> np.ndarray:
    """`recency_weights`, computed once per (length, half-life) and read-only: a served request
    asked for the same few (a history is at most `depth` long), each time a tenth of `scores`."""
    weights = recency_weights(n, half_life)
    weights.flags.writeable = False
    return weights


def exploration_bonus(data: Interactions, cut_off_days: float) -> np.ndarray:
    """Per item, 1 / (1 + ln(1 + users)) if first seen within the cut-off, else 0."""
    first = data.item_first_seen()
    if len(data) == 0:
        return np.zeros(data.n_items, dtype=np.float32)
    new = first >= data.ts.max() - cut_off_days * DAY
    bonus: np.ndarray = (new / (1.0 + np.log1p(popularity(data)))).astype(np.float32)
    return bonus


def repeat_rates(data: Interactions, prior: float = 5.0) -> np.ndarray:
    """Per item, the share of its buyers who bought it more than once, shrunk towards the
    catalogue's share by `prior` pseudo-buyers (an item with 2 buyers says little)."""
    if len(data) == 0:
        return np.zeros(data.n_items, dtype=np.float32)
    pairs, counts = np.unique(
        data.users.astype(np.int64) * data.n_items + data.items, return_counts=True
    )
    item = pairs % data.n_items
    buyers = np.bincount(item, minlength=data.n_items)
    repeaters = np.bincount(item, weights=counts >= 2, minlength=data.n_items)
    overall = repeaters.sum() / max(buyers.sum(), 1)
    rates: np.ndarray = ((repeaters + prior * overall) / (buyers + prior)).astype(np.float32)
    return rates


class UserPersonalization:
    Params: ClassVar[type[RecipeParams]] = UserPersonalizationParams

    def __init__(self, params: UserPersonalizationParams | None = None) -> None:
        self.params = params or UserPersonalizationParams()
        self.weights: np.ndarray | None = None  # dense items × items (EASE)
        self.nbr_idx: np.ndarray | None = None  # sparse fallback: items × k
        self.nbr_score: np.ndarray | None = None
        self.explore = np.zeros(0, dtype=np.float32)
        self.new_items = np.zeros(0, dtype=np.int64)  # where `explore` > 0
        self.repeat_rate = np.zeros(0, dtype=np.float32)
        self.factors: np.ndarray | None = None  # items × hidden_dimension (PureSVD)
        self.factor_scale = np.zeros(0, dtype=np.float32)
        self.factor_gram: np.ndarray | None = None  # rank × rank YᵀY of ALS factors (fold-in)
        self.n_items = 0

    @functools.cached_property
    def depth(self) -> int:
        """History items that count: recency weights below 1/1000 change no ranking, and
        skipping them keeps a long history's request as fast as a short one's. (Computed once:
        the parameters are frozen and a recipe's `params` is set only when it is built.)"""
        half_life = self.params.recency_half_life
        if half_life is None:
            return self.params.max_history
        return min(self.params.max_history, int(np.ceil(half_life * np.log2(1000))))

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        x = data.matrix()
        dense = data.n_items <= self.params.dense_item_limit
        gram = gram_matrix(x)
        if dense and self.params.ease_blend > 0:
            self.weights = ease_weights(x, self.params.regularization, gram)
        if not dense or self.params.ease_blend < 1:
            self.nbr_idx, self.nbr_score = cooccurrence_neighbours(
                x, self.params.neighbours, 0.5, 1, binary_gram(x, gram)
            )
        rank = self.params.hidden_dimension
        if rank is None and not dense:
            rank = SPARSE_RANK
        if rank:
            if self.params.factor_model == "als":
                self.factors, self.factor_gram = als_factors(x, rank)
            else:
                self.factors, self.factor_scale = item_factors(x, rank)
        self.explore = exploration_bonus(data, self.params.exploration_item_age_cut_off)
        self.new_items = np.flatnonzero(self.explore > 0)
        self.repeat_rate = repeat_rates(data)
        return self

    def scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        history, w = self._weighted(history, weights)
        factor = None
        if self.factors is not None and len(history):
            factor = self.factors @ self.user_vector(history, w)
        return self._combine(history, w, factor)

    def scores_many(
        self, histories: Sequence[np.ndarray], chunk: int = 256
    ) -> Iterator[np.ndarray]:
        """`scores` of each history (no event weights), the factor products of `chunk` users
        at a time in one matrix product: a user's own product reads the whole items × rank
        matrix (12 MB at 48k items, about 1 ms) for 64 multiply-adds an item."""
        for start in range(0, len(histories), chunk):
            part = [self._weighted(h, None) for h in histories[start : start + chunk]]
            products = None
            if self.factors is not None:
                users = [self.user_vector(h, w) for h, w in part]
                products = np.stack(users) @ self.factors.T if users else None
            for j, (history, w) in enumerate(part):
                factor = products[j] if products is not None and len(history) else None
                yield self._combine(history, w, factor)

    def _weighted(
        self, history: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        history = history[-self.depth :]
        w = _shared_recency_weights(len(history), self.params.recency_half_life)
        if weights is not None:
            w = w * weights[-len(history) :] if len(history) else w
        return history, w

    def user_vector(self, history: np.ndarray, w: np.ndarray) -> np.ndarray:
        assert self.factors is not None
        if self.factor_gram is not None:
            return fold_in(self.factors, self.factor_gram, history, w)
        user: np.ndarray = (w * self.factor_scale[history]) @ self.factors[history]
        return user

    def _combine(self, history: np.ndarray, w: np.ndarray, factor: np.ndarray | None) -> np.ndarray:
        ease = None
        if self.weights is not None:
            # One gather of the history's rows and a BLAS gemv rather than a Python loop adding
            # rows: engine top-25 on the 4k sample went from 1.01x to 1.14x implicit ALS's
            # (bench/serving.py).
            ease = w.astype(np.float32, copy=False) @ self.weights[history]
        out: np.ndarray
        if self.nbr_idx is None or self.nbr_score is None:
            assert ease is not None
            out = ease
        else:
            out = neighbour_scores(history, self.nbr_idx, self.nbr_score, self.n_items, w)
            if ease is not None:
                blend = self.params.ease_blend
                out *= (1.0 - blend) / max(float(out.max()), 1e-12)
                out += (blend / max(float(ease.max()), 1e-12)) * ease
        if factor is not None:
            blend = self.params.factor_blend
            out *= (1.0 - blend) / max(float(out.max()), 1e-12)
            out += (blend / max(float(factor.max()), 1e-12)) * factor
        top = float(out.max()) if len(out) else 0.0
        if top <= 0.0:
            return out
        if not self.params.exclude_seen and self.params.repeat_weight > 0 and len(history):
            # Items differ in how often people buy them again (consumables against one-offs):
            # the boost scales with the item's repeat rate in the training data.
            boost = self.params.repeat_weight * top * w * self.repeat_rate[history]
            np.add.at(out, history, boost)
        if self.params.exploration_weight > 0 and len(self.new_items):
            # The bonus grows with the item's own score for this user (exploration stays
            # personal, not the same new items for everyone), plus a floor that lets an item
            # with no co-interactions yet surface at all. Only new items change: index them.
            new = self.new_items
            bonus = self.explore[new] * (np.maximum(out[new], 0.0) + 0.1 * top)
            out[new] += self.params.exploration_weight * bonus
        return out

    def related(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(np.asarray([item]))
        scores[item] = -np.inf
        order = np.argsort(-scores, kind="stable")
        return order, scores[order]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"explore": self.explore, "repeat_rate": self.repeat_rate}
        if self.weights is not None:
            out["weights"] = self.weights
        if self.nbr_idx is not None and self.nbr_score is not None:
            out.update(nbr_idx=self.nbr_idx, nbr_score=self.nbr_score)
        if self.factors is not None:
            out.update(factors=self.factors, factor_scale=self.factor_scale)
        if self.factor_gram is not None:
            out["factor_gram"] = self.factor_gram
        return out

    @classmethod
    def from_arrays(cls, params: RecipeParams, arrays: dict[str, np.ndarray]) -> Self:
        recipe = cls(params)  # type: ignore[arg-type]
        if "weights" in arrays:
            recipe.weights = arrays["weights"]
            recipe.n_items = recipe.weights.shape[0]
        if "nbr_idx" in arrays:
            recipe.nbr_idx, recipe.nbr_score = arrays["nbr_idx"], arrays["nbr_score"]
            recipe.n_items = recipe.nbr_idx.shape[0]
        if "factors" in arrays:
            recipe.factors, recipe.factor_scale = arrays["factors"], arrays["factor_scale"]
            recipe.factor_gram = arrays.get("factor_gram")
        recipe.explore = arrays.get("explore", np.zeros(recipe.n_items, dtype=np.float32))
        recipe.new_items = np.flatnonzero(recipe.explore > 0)
        recipe.repeat_rate = arrays.get("repeat_rate", np.ones(recipe.n_items, dtype=np.float32))
        return recipe


class PersonalizedRankingParams(UserPersonalizationParams):
    # Ranking orders a list the caller chose: seen items stay in it, and nothing is explored.
    exclude_seen: bool = False
    exploration_weight: float = Field(default=0.0, ge=0.0, le=1.0)


class PersonalizedRanking(UserPersonalization):
    """`personalized-ranking`: the same fold-in model, scoring the caller's items."""

    Params: ClassVar[type[RecipeParams]] = PersonalizedRankingParams
