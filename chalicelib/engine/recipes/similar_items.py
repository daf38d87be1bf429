"""`similar-items`: item-to-item neighbours from co-interactions, with Personalize's
`popularity_discount_factor` and `min_cointeraction_count`.

An item with too little data (fewer neighbours than asked for, none at all for an item nobody
co-bought) is completed with the most popular items, as Personalize's SIMS falls back to
popularity, so the list is never short while the catalogue has items."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field

from chalicelib.engine.data import Interactions
from chalicelib.engine.recipes.base import RecipeParams
from chalicelib.engine.recipes.item_item import cooccurrence_neighbours, neighbour_scores
from chalicelib.engine.recipes.popularity import popularity


class SimilarItemsParams(RecipeParams):
    popularity_discount_factor: float = Field(default=0.5, ge=0.0, le=1.0)
    min_cointeraction_count: int = Field(default=2, ge=1)
    neighbours: int = Field(default=100, ge=1, le=500)
    # Complete short neighbour lists with popular items (False: return only true neighbours).
    popular_fallback: bool = True


class SimilarItems:
    Params: ClassVar[type[RecipeParams]] = SimilarItemsParams

    def __init__(self, params: SimilarItemsParams | None = None) -> None:
        self.params = params or SimilarItemsParams()
        self.nbr_idx = np.zeros((0, 1), dtype=np.int32)
        self.nbr_score = np.zeros((0, 1), dtype=np.float32)
        self.popular_order = np.zeros(0, dtype=np.int64)

    def fit(self, data: Interactions) -> Self:
        self.nbr_idx, self.nbr_score = cooccurrence_neighbours(
            data.matrix(),
            self.params.neighbours,
            self.params.popularity_discount_factor,
            self.params.min_cointeraction_count,
        )
        self.popular_order = np.argsort(-popularity(data), kind="stable")
        return self

    def scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return neighbour_scores(
            history, self.nbr_idx, self.nbr_score, self.nbr_idx.shape[0], weights
        )

    def related(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours best first, then (scored 0) popular items that are not neighbours."""
        idx = self.nbr_idx[item]
        valid = idx >= 0
        found, scores = idx[valid].astype(np.int64), self.nbr_score[item][valid]
        if not self.params.popular_fallback or len(self.popular_order) == 0:
            return found, scores
        fresh = np.ones(self.nbr_idx.shape[0], dtype=bool)
        fresh[found] = False
        fresh[item] = False
        extra = self.popular_order[fresh[self.popular_order]]
        return np.concatenate([found, extra]), np.concatenate(
            [scores, np.zeros(len(extra), dtype=np.float32)]
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "nbr_idx": self.nbr_idx,
            "nbr_score": self.nbr_score,
            "popular_order": self.popular_order,
        }

    @classmethod
    def from_arrays(cls, params: RecipeParams, arrays: dict[str, np.ndarray]) -> Self:
        recipe = cls(params)  # type: ignore[arg-type]
        recipe.nbr_idx, recipe.nbr_score = arrays["nbr_idx"], arrays["nbr_score"]
        recipe.popular_order = arrays.get("popular_order", np.zeros(0, dtype=np.int64))
        return recipe
