"""`similar-items`: item-to-item neighbours from co-interactions, with Personalize's
`popularity_discount_factor` and `min_cointeraction_count`. Items with too little data have no
neighbours, and the provider falls back to popular items for them."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field

from chalicelib.engine.data import Interactions
from chalicelib.engine.recipes.base import RecipeParams
from chalicelib.engine.recipes.item_item import cooccurrence_neighbours, neighbour_scores


class SimilarItemsParams(RecipeParams):
    popularity_discount_factor: float = Field(default=0.5, ge=0.0, le=1.0)
    min_cointeraction_count: int = Field(default=2, ge=1)
    neighbours: int = Field(default=100, ge=1, le=500)


class SimilarItems:
    Params: ClassVar[type[RecipeParams]] = SimilarItemsParams

    def __init__(self, params: SimilarItemsParams | None = None) -> None:
        self.params = params or SimilarItemsParams()
        self.nbr_idx = np.zeros((0, 1), dtype=np.int32)
        self.nbr_score = np.zeros((0, 1), dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        self.nbr_idx, self.nbr_score = cooccurrence_neighbours(
            data.matrix(),
            self.params.neighbours,
            self.params.popularity_discount_factor,
            self.params.min_cointeraction_count,
        )
        return self

    def scores(self, history: np.ndarray) -> np.ndarray:
        return neighbour_scores(history, self.nbr_idx, self.nbr_score, self.nbr_idx.shape[0])

    def related(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.nbr_idx[item]
        valid = idx >= 0
        return idx[valid], self.nbr_score[item][valid]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"nbr_idx": self.nbr_idx, "nbr_score": self.nbr_score}

    @classmethod
    def from_arrays(cls, params: RecipeParams, arrays: dict[str, np.ndarray]) -> Self:
        recipe = cls(params)  # type: ignore[arg-type]
        recipe.nbr_idx, recipe.nbr_score = arrays["nbr_idx"], arrays["nbr_score"]
        return recipe
