"""`popularity-count`: items by how many distinct users interacted with them; the fallback list."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

from chalicelib.engine.data import Interactions
from chalicelib.engine.recipes.base import RecipeParams


class PopularityParams(RecipeParams):
    pass


class PopularityCount:
    Params: ClassVar[type[RecipeParams]] = PopularityParams

    def __init__(self, params: PopularityParams | None = None) -> None:
        self.params = params or PopularityParams()
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        self.counts = popularity(data)
        return self

    def scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return self.counts.copy()

    def related(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-self.counts, kind="stable")
        order = order[order != item]
        return order, self.counts[order]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    @classmethod
    def from_arrays(cls, params: RecipeParams, arrays: dict[str, np.ndarray]) -> Self:
        recipe = cls(params)  # type: ignore[arg-type]
        recipe.counts = arrays["counts"]
        return recipe


def popularity(data: Interactions) -> np.ndarray:
    """Distinct users per item, as float32 (a user buying one item 50 times counts once)."""
    if len(data) == 0:
        return np.zeros(data.n_items, dtype=np.float32)
    pairs = np.sort(data.users.astype(np.int64) * data.n_items + data.items)
    # Sort-based distinct: numpy 2's hashing np.unique is 40x slower on 400k keys (measured).
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    return np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float32)
