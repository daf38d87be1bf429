"""The fallback policy, in one place: what is served when a provider has no personalized answer
(an unknown user or item, no model yet, a broken model, Personalize failing or slow).

- recommendations: the popular list, with the request's filter where the provider can apply it;
- related items: the same, less the item asked about;
- rankings: the given items the catalogue has (and, where the provider can tell, that pass the
  filter), most popular first, the others after them in the order they were given.

Every answer has a recommendation id: the provider's, or, for a fallback list, one of its own
(`fb-...`), so that clicks on a fallback list are attributed to it too.

A provider that raises is a provider without an answer (`provider_error`), except for a
`FilterError`, which is the caller's to fix (400). If the popular list fails too, the answer is
an empty list: a Braze message is never broken by a recommendation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from chalicelib.filters import FilterError, FilterRequest
from chalicelib.seam.roles import Serving
from chalicelib.vocabulary import Answer, Recommendations, Unanswered, new_recommendation_id

log = logging.getLogger("recs.fallback")
# A ranking is ordered by the whole popular list, however long the catalogue.
WHOLE_LIST = 1_000_000


def recommend(
    serving: Serving, user_id: str, num_results: int, flt: FilterRequest | None
) -> Recommendations:
    answer = _ask(serving, lambda: serving.recommend(user_id, num_results, flt))
    if isinstance(answer, Recommendations):
        return _with_id(answer)
    items = _popular(serving, num_results, flt, user_id)
    return _fallback(items, answer.reason)


def related_items(
    serving: Serving,
    item_id: str,
    num_results: int,
    user_id: str | None,
    flt: FilterRequest | None,
) -> Recommendations:
    answer = _ask(serving, lambda: serving.related_items(item_id, num_results, user_id, flt))
    if isinstance(answer, Recommendations):
        return _with_id(answer)
    popular = _popular(serving, num_results + 1, flt, user_id)
    items = [i for i in popular if i != item_id][:num_results]
    return _fallback(items, answer.reason)


def rank(
    serving: Serving, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None
) -> Recommendations:
    answer = _ask(serving, lambda: serving.rank(user_id, item_ids, flt))
    if isinstance(answer, Recommendations):
        return _with_id(answer)
    pool = answer.candidates
    if pool is None:
        try:
            pool = serving.catalogue().known(item_ids)
        except Exception:
            log.exception("the catalogue failed too; ranking the given items as they are")
            pool = item_ids
    order = {item: n for n, item in enumerate(_popular(serving, WHOLE_LIST, None, None))}
    ranked = sorted(pool, key=lambda item: order.get(item, len(order)))  # stable: given order
    return _fallback(ranked, answer.reason)


def _fallback(items: Sequence[str], reason: str) -> Recommendations:
    return Recommendations(items, "fallback", new_recommendation_id("fallback"), reason=reason)


def _with_id(answer: Recommendations) -> Recommendations:
    """A provider's answer always leaves with an id (Personalize's may, in theory, lack one)."""
    if answer.recommendation_id:
        return answer
    return replace(answer, recommendation_id=new_recommendation_id(answer.source))


def _ask(serving: Serving, call: Callable[[], Answer]) -> Answer:
    try:
        return call()
    except FilterError:
        raise
    except Exception as exc:
        log.warning("provider %s failed (%s); serving the fallback list", serving.name, exc)
        return Unanswered("provider_error")


def _popular(
    serving: Serving, num_results: int, flt: FilterRequest | None, user_id: str | None
) -> Sequence[str]:
    try:
        return serving.popular(num_results, flt, user_id)
    except FilterError:
        raise
    except Exception:
        log.exception("the fallback list failed too; serving an empty list")
        return []
