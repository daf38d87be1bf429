"""The contract every recipe keeps, and the ranking kernel they share."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.engine.data import Interactions


class RecipeParams(BaseModel):
    """Hyperparameters of one recipe; unknown names are refused, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Personalize's featurization knobs: users whose history length lies outside these percentiles
    # of all users' lengths are left out of training (a few huge histories, often resellers or
    # bots, can dominate item-to-item statistics). Defaults as Personalize's user-personalization.
    min_user_history_length_percentile: float = Field(default=0.0, ge=0.0, le=1.0)
    max_user_history_length_percentile: float = Field(default=0.99, ge=0.0, le=1.0)


class Recipe(Protocol):
    Params: ClassVar[type[RecipeParams]]
    params: Any

    def fit(self, data: Interactions) -> Self: ...

    def scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """A float32 score per item for a user whose distinct items (oldest first) are
        `history`, each weighing `weights` (event-type weights; None: all 1); NaN where the
        recipe cannot score."""
        ...

    def related(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, scores) of the items most similar to `item`, best first."""
        ...

    def arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_arrays(cls, params: RecipeParams, arrays: dict[str, np.ndarray]) -> Self: ...


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `k` best finite scores among `allowed` items, best first.

    Written for large catalogues: one negated copy, one partition of k, and a sort of those k
    only (no full pass to count finite scores; -inf and NaN are dropped from the k found)."""
    if k <= 0 or len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    # The k smallest negated scores, not the k largest: numpy's introselect is 20x slower
    # selecting near the end of a vector full of equal values (a sparse score vector), measured
    # at 50k items. NaN needs no pass of its own: a partition puts NaN after every number, so
    # it is among the k only when fewer than k scores are numbers, and is then dropped.
    negated = np.negative(scores)
    if allowed is not None:
        np.copyto(negated, np.inf, where=~allowed)
    k = min(k, len(negated))
    part = np.argpartition(negated, k - 1)[:k]
    values = negated[part]
    finite = np.isfinite(values)
    part, values = part[finite], values[finite]
    # Best first; equal scores keep index order, as a stable sort of the whole vector would.
    best: np.ndarray = part[np.lexsort((part, values))]
    return best
