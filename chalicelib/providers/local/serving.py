"""The `local` provider's serving role: answers from the campaigns' served versions, the popular
list, the catalogue and health.

Serving state (loaded models, catalogue, masks) is cached in the process and refreshed when the
store's revision counters move (`state`), so a `train` or an import run from the CLI reaches a
running server without a restart, and a request costs one small query when nothing changed.
When there is no answer (no model, an unknown user or item) the answer is `Unanswered` with the
reason: what is served then is `chalicelib.seam.fallback`'s decision.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.filters import FilterRequest
from chalicelib.providers.local.database import StoreUnavailable
from chalicelib.providers.local.filtering import LocalFilters
from chalicelib.providers.local.popular import PopularList
from chalicelib.providers.local.served import History, ServedVersion
from chalicelib.providers.local.state import ServingState
from chalicelib.providers.local.store import LocalStore
from chalicelib.vocabulary import Answer, Recommendations, Unanswered, new_recommendation_id

# Without a model, the popular list falls back to this many of the catalogue's items.
CATALOGUE_FALLBACK = 1000


class LocalServing:
    name = "local"

    def __init__(self, store: LocalStore, state: ServingState, filters: LocalFilters) -> None:
        self.store, self.state, self.filters = store, state, filters
        self._popular = PopularList(store)

    def catalogue(self) -> InMemoryCatalogue:
        return self.state.current().catalogue

    def history(self, served: ServedVersion, user_id: str) -> History:
        """The user's history for `served`, without the recent events when the store cannot be
        read (the model's own history still serves)."""
        try:
            return served.history(self.store, user_id)
        except StoreUnavailable:
            return History(*served.model.fold_in(user_id, []))

    def recommend(self, user_id: str, num_results: int, flt: FilterRequest | None) -> Answer:
        state = self.state.current()
        served = state.campaigns.get("recommendations")
        if served is None:
            return Unanswered(state.missing_reason("recommendations"))
        history = self.history(served, user_id)
        if len(history.items) == 0:
            return Unanswered("unknown_user")
        mask = self.filters.mask(served, user_id, flt)
        return _answer(served, served.recommend_ids(history, num_results, mask))

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Answer:
        state = self.state.current()
        served = state.campaigns.get("related-items")
        if served is None:
            return Unanswered(state.missing_reason("related-items"))
        items = served.related(item_id, num_results, self.filters.mask(served, user_id, flt))
        if not items:
            return Unanswered("unknown_item")
        return _answer(served, items)

    def rank(self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None) -> Answer:
        state = self.state.current()
        candidates = state.catalogue.known(item_ids)
        if flt is not None:
            candidates = self.filters.keep(candidates, user_id, flt, state.catalogue)
        served = state.campaigns.get("rankings")
        if served is None:
            return Unanswered(state.missing_reason("rankings"), candidates)
        history = self.history(served, user_id)
        if len(history.items) == 0:
            return Unanswered("unknown_user", candidates)
        return _answer(served, served.rank(history, candidates).item_ids)

    def popular(
        self, num_results: int, flt: FilterRequest | None, user_id: str | None = None
    ) -> list[str]:
        state = self.state.current()
        served = state.campaigns.get("recommendations") or next(
            iter(state.campaigns.values()), None
        )
        if served is not None:
            return served.popular(num_results, self.filters.mask(served, user_id, flt))
        items = self._popular.items(lambda: list(state.catalogue.ids())[:CATALOGUE_FALLBACK])
        if flt is not None:  # no model yet: the filter still applies to the popular list
            items = self.filters.keep(items, user_id, flt, state.catalogue)
        return items[:num_results]

    def health(self) -> dict[str, object]:
        state = self.state.current()
        problems = self.state.problems()
        return {
            "status": "degraded" if problems else "ok",
            "provider": self.name,
            "model_version": state.version_id("recommendations"),
            "campaigns": {name: s.version_id for name, s in state.campaigns.items()},
            "items": len(state.catalogue),
            "problems": problems,
        }


def _answer(served: ServedVersion, item_ids: Sequence[str]) -> Recommendations:
    """A personalized answer under the engine's own recommendation id."""
    rid = new_recommendation_id()
    return Recommendations(item_ids, "personalized", rid, solution_version=served.version_id)
