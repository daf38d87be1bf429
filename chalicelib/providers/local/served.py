"""A solution version as the `local` provider serves it: the public face of its served state.

`ServedVersion` holds a loaded model with its stored version row and the catalogue it is served
against, and answers the way Personalize's runtime does, with item ids and scores:
`recommend` (GetRecommendations), `rank` (GetPersonalizedRanking), `related` (similar items)
and `popular` (the popularity list). A user's input is a `History`: the trained history plus the
events stored since training (`history`). What a user may be shown is a boolean `mask` over the
model's items: the catalogue mask `allowed` (items the catalogue can render), narrowed by a
filter with `LocalFilters.mask`.

The HTTP routes' provider (`serving`), batch inference (`batch`) and the benchmarks use it; so
can anything that serves Personalize's answers from the engine (an emulator of its APIs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.engine.filters import ItemFields
from chalicelib.engine.solution import Ranked, SolutionModel
from chalicelib.providers.local.store import LocalStore


class History(NamedTuple):
    """A user's distinct known items (model indices, oldest first) and their event weights."""

    items: np.ndarray
    weights: np.ndarray


@dataclass
class ServedVersion:
    version: dict[str, Any]  # the stored row: version_id, solution, recipe, params, max_seq, ...
    model: SolutionModel
    catalogue: InMemoryCatalogue  # of the state this version was loaded in
    allowed: np.ndarray | None  # the catalogue mask: model items it can render (None: all)
    _fields: ItemFields | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, version: dict[str, Any], model: SolutionModel, catalogue: InMemoryCatalogue
    ) -> ServedVersion:
        """`model` served against `catalogue` (an empty catalogue renders every item)."""
        allowed = None
        if len(catalogue):
            allowed = np.fromiter((i in catalogue for i in model.item_ids.tolist()), bool)
            if allowed.all():  # the usual case: no mask to apply on each request
                allowed = None
        return cls(version, model, catalogue, allowed)

    @classmethod
    def load(
        cls, version: dict[str, Any], path: Path, catalogue: InMemoryCatalogue
    ) -> ServedVersion:
        return cls.of(version, SolutionModel.load(path, version), catalogue)

    @property
    def version_id(self) -> str:
        return str(self.version["version_id"])

    @property
    def solution(self) -> str:
        return str(self.version["solution"])

    @property
    def recipe(self) -> str:
        return str(self.version["recipe"])

    def item_fields(self) -> ItemFields:
        """The model's items indexed for filters, built on first use."""
        if self._fields is None:
            model = self.model
            self._fields = ItemFields(model.item_ids, self.catalogue, model.item_index)
        return self._fields

    def knows_item(self, item_id: str) -> bool:
        return item_id in self.model.item_index

    def history(self, store: LocalStore, user_id: str) -> History:
        """The user's history as the model knows it, plus the events stored since it was
        trained (a `StoreUnavailable` when the store cannot be read)."""
        recent = store.user_events(user_id, self.version["max_seq"])
        items, weights = self.model.fold_in(user_id, [(i, t) for i, t, _ in recent])
        return History(items, weights)

    def recommend(self, history: History, n: int, mask: np.ndarray | None) -> Ranked:
        """The `n` best items for the user among `mask`, with their scores; seen items are left
        out where the recipe says so."""
        return self.model.recommend(history.items, n, mask, history.weights)

    def recommend_ids(self, history: History, n: int, mask: np.ndarray | None) -> list[str]:
        """`recommend`'s item ids without their scores: what `GET /recommendations` serves.
        Rounding a score per item and building `Ranked` was a fifth of the route's time."""
        best = self.model.recommend_indices(history.items, n, mask, history.weights)
        return list(self.model.item_ids[best].tolist())

    def rank(self, history: History, item_ids: Sequence[str]) -> Ranked:
        """`item_ids` best first with their scores (by popularity for a user without history);
        items the model does not know go last, with no score."""
        return self.model.rank(history.items, item_ids, history.weights)

    def related(self, item_id: str, n: int, mask: np.ndarray | None) -> list[str] | None:
        """Items similar to `item_id` among `mask`, or None when the model does not know it."""
        return self.model.related(item_id, n, mask)

    def popular(self, n: int, mask: np.ndarray | None) -> list[str]:
        """The `n` most popular items among `mask`."""
        order = self.model.popular_order
        if mask is not None:
            order = order[mask[order]]
        return list(self.model.item_ids[order[:n]].tolist())
