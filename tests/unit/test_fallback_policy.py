"""The one fallback policy (`chalicelib.seam.fallback`), against an in-memory provider: what is
served when the provider has no answer, fails, or its popular list fails too."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chalicelib.catalogue import InMemoryCatalogue
from chalicelib.filters import FilterError, FilterRequest, MissingFilterValueError
from chalicelib.seam import fallback
from chalicelib.vocabulary import Answer, Recommendations, Unanswered

POPULAR = ["p1", "p2", "p3", "p4", "p5"]


class InMemoryServing:
    """A Serving role whose answers the test sets."""

    name = "memory"

    def __init__(self, answer: Answer | Exception, popular: Sequence[str] | Exception = POPULAR):
        self.answer, self.popular_items = answer, popular
        self.items = InMemoryCatalogue([(i, {"name": i}) for i in [*POPULAR, "x1"]])
        self.asked_popular: list[tuple[int, FilterRequest | None, str | None]] = []

    def _give(self) -> Answer:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def recommend(self, user_id: str, num_results: int, flt: FilterRequest | None) -> Answer:
        return self._give()

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Answer:
        return self._give()

    def rank(self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None) -> Answer:
        return self._give()

    def popular(
        self, num_results: int, flt: FilterRequest | None, user_id: str | None = None
    ) -> Sequence[str]:
        self.asked_popular.append((num_results, flt, user_id))
        if isinstance(self.popular_items, Exception):
            raise self.popular_items
        return self.popular_items[:num_results]

    def catalogue(self) -> InMemoryCatalogue:
        return self.items

    def health(self) -> dict[str, object]:
        return {"status": "ok", "provider": self.name}


def test_a_personalized_answer_is_served_as_it_is() -> None:
    answer = Recommendations(["x1"], "personalized", "RID")
    assert fallback.recommend(InMemoryServing(answer), "u1", 3, None) is answer


def test_no_answer_serves_the_popular_list_for_that_user_and_filter_with_the_reason() -> None:
    serving = InMemoryServing(Unanswered("unknown_user"))
    flt = FilterRequest("exclude-purchased")
    recs = fallback.recommend(serving, "u1", 3, flt)
    assert (list(recs.item_ids), recs.source, recs.reason) == (
        POPULAR[:3],
        "fallback",
        "unknown_user",
    )
    assert serving.asked_popular == [(3, flt, "u1")]


def test_related_items_fallback_never_returns_the_item_asked_about() -> None:
    recs = fallback.related_items(InMemoryServing(Unanswered("unknown_item")), "p2", 3, None, None)
    assert list(recs.item_ids) == ["p1", "p3", "p4"]


def test_a_failing_provider_is_a_provider_without_an_answer() -> None:
    recs = fallback.recommend(InMemoryServing(RuntimeError("down")), "u1", 2, None)
    assert (list(recs.item_ids), recs.reason) == (POPULAR[:2], "provider_error")


def test_a_bad_filter_is_the_callers_error_not_a_fallback() -> None:
    with pytest.raises(FilterError):
        fallback.recommend(InMemoryServing(MissingFilterValueError("MAX")), "u1", 2, None)
    no_answer = InMemoryServing(Unanswered("unknown_user"), popular=MissingFilterValueError("MAX"))
    with pytest.raises(FilterError):
        fallback.recommend(no_answer, "u1", 2, FilterRequest("cheap"))


def test_the_popular_list_failing_too_gives_an_empty_list() -> None:
    serving = InMemoryServing(RuntimeError("down"), popular=RuntimeError("down too"))
    recs = fallback.recommend(serving, "u1", 2, None)
    assert (list(recs.item_ids), recs.source) == ([], "fallback")


def test_rankings_fall_back_to_the_known_given_items_most_popular_first() -> None:
    given = ["x1", "p3", "nope", "p1"]
    recs = fallback.rank(InMemoryServing(RuntimeError("down")), "u1", given, None)
    # "nope" is not in the catalogue; "x1" is not popular at all: after the popular ones.
    assert (list(recs.item_ids), recs.reason) == (["p1", "p3", "x1"], "provider_error")


def test_rankings_use_the_candidates_the_provider_could_tell() -> None:
    serving = InMemoryServing(Unanswered("no_model", candidates=["p4", "p2"]))
    recs = fallback.rank(serving, "u1", ["p4", "p2", "p1"], FilterRequest("f"))
    assert list(recs.item_ids) == ["p2", "p4"]  # p1 was filtered out by the provider
