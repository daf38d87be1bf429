"""The HTTP API's logic, free of Chalice: auth, parsing and validation, the provider call,
fallback, decoration and headers. `app.py` turns a `Request` into a `Reply` with these functions.

Every failure becomes a JSON `{"error", "message"}` object with a 4xx status; the recommendation
routes never answer 404 or 5xx: a provider failure gives the fallback list.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib import runtime
from chalicelib.auth import is_authorized
from chalicelib.filter_values import values_from_query
from chalicelib.models import (
    EventBatch,
    ItemBatch,
    RankingRequest,
    RecommendationsQuery,
    RelatedItemsQuery,
    UserBatch,
    describe,
)
from chalicelib.providers.base import FilterError, FilterRequest, Provider, Recommendations
from chalicelib.runtime import Runtime

log = logging.getLogger("recs.serving")
Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"
_RESERVED_QUERY = {"user_id", "item_id", "num_results", "filter"}


@dataclass(frozen=True)
class Request:
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    headers: dict[str, str]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_reply(status: int, code: str, message: str) -> Reply:
    body = json.dumps({"error": code, "message": message}, ensure_ascii=False)
    return Reply(status, body, {"Content-Type": JSON, "Cache-Control": "no-store"})


def _guarded(handler: Callable[[Request, Runtime], Reply]) -> Callable[[Request], Reply]:
    """Authenticate, then map every error to the JSON error envelope. The runtime is looked up
    once and handed down: a request sees one set of settings from start to end."""

    def wrapped(request: Request) -> Reply:
        try:
            rt = runtime.current()
            if not is_authorized(request.headers, rt.settings.keys):
                if not rt.settings.keys:
                    log.error("no API key configured (RECS_API_KEYS): refusing every request")
                return error_reply(401, "unauthorized", "a valid API key is required")
            return handler(request, rt)
        except ApiError as exc:
            return error_reply(exc.status, exc.code, exc.message)
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return error_reply(500, "internal_error", "an internal error occurred")

    wrapped.__name__ = handler.__name__
    return wrapped


# -- parsing ---------------------------------------------------------------------------------


def _validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", describe(exc)) from None


def _query(model: type[Model], request: Request) -> Model:
    return _validate(model, {k: v[-1] for k, v in request.query.items() if v})


def _body(model: type[Model], request: Request, rt: Runtime) -> Model:
    limit = rt.settings.max_body_bytes
    if len(request.body) > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if content_type != JSON:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: RecursionError
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return _validate(model, data)


def _filter(
    name: str | None, query: Mapping[str, Sequence[str]], rt: Runtime
) -> FilterRequest | None:
    """The named filter with its placeholder values: every other query parameter, repeated or
    comma-separated (`?filter=by-category&CATEGORY=shoes,bags`)."""
    if name is None:
        return None
    if name not in rt.config.filters:
        raise ApiError(400, "unknown_filter", f"no filter named {name!r} is configured")
    return FilterRequest(name, values_from_query(query, _RESERVED_QUERY))


# -- item lists ------------------------------------------------------------------------------


def _items_reply(rt: Runtime, recs: Recommendations, limit: int, cacheable: bool) -> Reply:
    body = rt.provider.catalogue().render(recs.item_ids, limit)
    headers = {"Content-Type": JSON, "X-Recommendation-Source": recs.source}
    headers["Cache-Control"] = (
        f"public, max-age={rt.settings.cache_max_age}" if cacheable else "no-store"
    )
    return Reply(200, body, headers)


def _or_fallback(
    provider: Provider,
    call: Callable[[], Recommendations],
    num_results: int,
    flt: FilterRequest | None,
    fallback: Callable[[], Sequence[str]] | None = None,
) -> Recommendations:
    """`call()`, or when the provider fails, `fallback()` (default: the popular items)."""
    try:
        return call()
    except ApiError:
        raise
    except FilterError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    except Exception:
        log.exception("provider %s failed; serving the fallback list", provider.name)
    try:
        items = fallback() if fallback else provider.popular(num_results, flt)
        return Recommendations(items, "fallback")
    except Exception:
        log.exception("the fallback list failed too; serving an empty list")
        return Recommendations([], "fallback")


@_guarded
def recommendations(request: Request, rt: Runtime) -> Reply:
    q = _query(RecommendationsQuery, request)
    flt = _filter(q.filter, request.query, rt)
    provider = rt.provider
    recs = _or_fallback(
        provider, lambda: provider.recommend(q.user_id, q.num_results, flt), q.num_results, flt
    )
    return _items_reply(rt, recs, q.num_results, cacheable=True)


@_guarded
def related_items(request: Request, rt: Runtime) -> Reply:
    q = _query(RelatedItemsQuery, request)
    flt = _filter(q.filter, request.query, rt)
    if flt is not None:
        flt = replace(flt, current_item=q.item_id)
    provider = rt.provider
    recs = _or_fallback(
        provider,
        lambda: provider.related_items(q.item_id, q.num_results, q.user_id, flt),
        q.num_results,
        flt,
    )
    return _items_reply(rt, recs, q.num_results, cacheable=True)


@_guarded
def rankings(request: Request, rt: Runtime) -> Reply:
    body = _body(RankingRequest, request, rt)
    values = {k: v if isinstance(v, list) else [v] for k, v in body.filter_values.items()}
    flt = _filter(body.filter, values, rt)
    provider = rt.provider
    recs = _or_fallback(
        provider,
        lambda: provider.rank(body.user_id, body.item_ids, flt),
        len(body.item_ids),
        flt,
        fallback=lambda: _known_items(provider, body.item_ids),
    )
    return _items_reply(rt, recs, len(body.item_ids), cacheable=False)


def _known_items(provider: Provider, item_ids: Sequence[str]) -> list[str]:
    """A failed ranking's fallback: the given items the catalogue has (all if it is empty), in
    the given order, never popular items nobody asked to rank."""
    catalogue = provider.catalogue()
    return [i for i in item_ids if not len(catalogue) or i in catalogue]


# -- writes ----------------------------------------------------------------------------------


def _accepted(count: int) -> Reply:
    return Reply(202, json.dumps({"accepted": count}), {"Content-Type": JSON})


@_guarded
def events(request: Request, rt: Runtime) -> Reply:
    batch = _body(EventBatch, request, rt)
    return _accepted(rt.provider.put_events(batch))


@_guarded
def users(request: Request, rt: Runtime) -> Reply:
    batch = _body(UserBatch, request, rt)
    return _accepted(rt.provider.put_users(batch.users))


@_guarded
def items(request: Request, rt: Runtime) -> Reply:
    batch = _body(ItemBatch, request, rt)
    return _accepted(rt.provider.put_items(batch.items))


def health() -> Reply:
    try:
        body: dict[str, object] = runtime.current().provider.health()
        status = 200
    except Exception:
        log.exception("health check failed")
        body, status = {"status": "error", "provider": None}, 503
    return Reply(status, json.dumps(body), {"Content-Type": JSON, "Cache-Control": "no-store"})
