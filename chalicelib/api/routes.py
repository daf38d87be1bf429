"""The HTTP API's logic, free of any framework: routing, auth, validation, the call through the
seam (its fallback policy included), decoration within the byte budget, and headers. `app.py`
(Chalice) and `server` (the production server) turn their request into a `web.Request` and call
`route()`.

Every failure becomes a JSON `{"error", "message"}` object: 4xx for what the caller can fix,
503 with `Retry-After` for a write the store cannot take now. The recommendation routes never
answer 404 or 5xx: a provider that fails, has no model or a broken one gives the fallback list
(`chalicelib.seam.fallback`; counted by reason in `fallback_log`, shown in `/health`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from chalicelib.api import budget, web
from chalicelib.api.apikeys import current_keys
from chalicelib.api.auth import is_authorized
from chalicelib.api.fallback_log import COUNTER
from chalicelib.api.web import JSON, ApiError, Reply, Request, error_reply, json_reply
from chalicelib.filters import FilterError, FilterRequest, UnknownFilterError
from chalicelib.filters.values import values_from_query
from chalicelib.payloads import (
    EventBatch,
    ItemBatch,
    RankingRequest,
    RecommendationsQuery,
    RelatedItemsQuery,
    UserBatch,
)
from chalicelib.seam import fallback, runtime
from chalicelib.seam.runtime import Runtime
from chalicelib.vocabulary import (
    Recommendations,
    ServedList,
    UnavailableError,
    new_recommendation_id,
)

log = logging.getLogger("recs.serving")
_RESERVED_QUERY = {"user_id", "item_id", "num_results", "filter", "campaign", "canvas_step"}
Handler = Callable[[Request], Reply]


def _guarded(item_list: bool) -> Callable[[Callable[[Request, Runtime], Reply]], Handler]:
    """Authenticate, then map every error to the JSON error envelope. The runtime is looked up
    once and handed down: a request sees one set of settings from start to end. An unexpected
    error on an item-list route still answers 200 with an (empty) fallback list."""

    def decorate(handler: Callable[[Request, Runtime], Reply]) -> Handler:
        def wrapped(request: Request) -> Reply:
            try:
                rt = runtime.current()
                keys = current_keys(rt.settings)
                if not is_authorized(request.headers, keys):
                    if not keys:
                        _no_keys()
                    return error_reply(401, "unauthorized", "a valid API key is required")
                return handler(request, rt)
            except ApiError as exc:
                return error_reply(exc.status, exc.code, exc.message, exc.headers)
            except FilterError as exc:  # a bad filter or value: the caller's to fix
                return error_reply(400, exc.code, str(exc))
            except UnavailableError as exc:
                log.error("%s refused: %s", handler.__name__, exc.__cause__ or exc)
                retry = {"Retry-After": str(exc.retry_after)}
                return error_reply(503, "unavailable", str(exc), retry)
            except Exception:
                log.exception("unhandled error in %s", handler.__name__)
                if item_list:
                    COUNTER.record(handler.__name__, "error")
                    headers = {"X-Recommendation-Source": "fallback", "Cache-Control": "no-store"}
                    headers["X-Recommendation-Id"] = new_recommendation_id("fallback")
                    return Reply(200, "[]", {"Content-Type": JSON, **headers})
                return error_reply(500, "internal_error", "an internal error occurred")

        wrapped.__name__ = handler.__name__
        return wrapped

    return decorate


_no_keys_logged = [float("-inf")]


def _no_keys() -> None:
    """Say so once a minute, not once a request (Braze may be sending thousands)."""
    now = time.monotonic()
    if now - _no_keys_logged[0] >= 60:
        _no_keys_logged[0] = now
        log.error("no API key configured (RECS_API_KEYS or its parameter): refusing every request")


def _filter(
    name: str | None, query: Mapping[str, Sequence[str]], rt: Runtime
) -> FilterRequest | None:
    """The named filter with its placeholder values: every other query parameter, repeated or
    comma-separated (`?filter=by-category&CATEGORY=shoes,bags`)."""
    if name is None:
        return None
    if name not in rt.config.filters:
        raise ApiError(400, "unknown_filter", str(UnknownFilterError(name, rt.config.filters)))
    return FilterRequest(name, values_from_query(query, _RESERVED_QUERY))


# -- item lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """The route, who an answer is for (none: not kept) and the Braze campaign or Canvas step
    that asked."""

    route: str
    user_id: str | None
    campaign: str | None
    canvas_step: str | None


def _record(rt: Runtime, recs: Recommendations, shown: list[str], asked: Asked) -> None:
    """Keep what was served (SPEC section 11); never at the cost of the answer."""
    if not asked.user_id or not recs.recommendation_id:
        return
    served = ServedList(
        recs.recommendation_id,
        asked.user_id,
        shown,
        asked.route,
        recs.source,
        time.time(),
        recs.solution_version,
        asked.campaign or None,
        asked.canvas_step or None,
    )
    try:
        rt.loop.record_served(served)
    except Exception as exc:
        log.warning("served list %s not kept: %s", recs.recommendation_id, exc)


def _items_reply(
    rt: Runtime, recs: Recommendations, limit: int, cacheable: bool, asked: Asked
) -> Reply:
    rid = recs.recommendation_id or ""
    rendered = rt.serving.catalogue().render(recs.item_ids, limit, rid)
    body, trimmed = budget.fit(rendered, rt.settings.max_response_bytes)
    _record(rt, recs, _shown(recs, limit, body, trimmed), asked)
    headers = {"Content-Type": JSON, "X-Recommendation-Source": recs.source}
    headers["X-Recommendation-Id"] = rid
    headers["Cache-Control"] = (
        f"public, max-age={rt.settings.cache_max_age}" if cacheable else "no-store"
    )
    if recs.source == "fallback":
        COUNTER.record(asked.route, recs.reason)
        headers["X-Fallback-Reason"] = recs.reason or "unspecified"
    if trimmed:
        headers["X-Response-Trimmed"] = trimmed
    return Reply(200, body, headers)


def _shown(recs: Recommendations, limit: int, body: str, trimmed: budget.Trim | None) -> list[str]:
    """The ids of the items a body holds, in order: what the user was actually shown. The
    catalogue renders every id it is given, up to `limit`; only the byte budget may have left
    items out, and only then is the body read back."""
    if trimmed == "items":
        return [item["id"] for item in json.loads(body)]
    return list(recs.item_ids[:limit])


@_guarded(item_list=True)
def recommendations(request: Request, rt: Runtime) -> Reply:
    q = web.query(RecommendationsQuery, request)
    flt = _filter(q.filter, request.query, rt)
    recs = fallback.recommend(rt.serving, q.user_id, q.num_results, flt)
    asked = Asked("recommendations", q.user_id, q.campaign, q.canvas_step)
    return _items_reply(rt, recs, q.num_results, True, asked)


@_guarded(item_list=True)
def related_items(request: Request, rt: Runtime) -> Reply:
    q = web.query(RelatedItemsQuery, request)
    flt = _filter(q.filter, request.query, rt)
    if flt is not None:
        flt = replace(flt, current_item=q.item_id)
    recs = fallback.related_items(rt.serving, q.item_id, q.num_results, q.user_id, flt)
    asked = Asked("related-items", q.user_id, q.campaign, q.canvas_step)
    return _items_reply(rt, recs, q.num_results, True, asked)


@_guarded(item_list=True)
def rankings(request: Request, rt: Runtime) -> Reply:
    body = web.body(RankingRequest, request, rt.settings.max_body_bytes)
    values = {k: v if isinstance(v, list) else [v] for k, v in body.filter_values.items()}
    flt = _filter(body.filter, values, rt)
    recs = fallback.rank(rt.serving, body.user_id, body.item_ids, flt)
    asked = Asked("rankings", body.user_id, body.campaign, body.canvas_step)
    return _items_reply(rt, recs, len(body.item_ids), False, asked)


# -- writes ----------------------------------------------------------------------------------


def _repeated_event_id(batch: EventBatch) -> None:
    """Two events of one request with one `event_id` would be stored once (Personalize keeps
    the first too): refuse the request rather than answer a count that was not stored."""
    seen: dict[str, int] = {}
    for n, event in enumerate(batch.events):
        if event.event_id is None:
            continue
        if event.event_id in seen:
            message = f"events[{n}].event_id repeats events[{seen[event.event_id]}].event_id"
            raise ApiError(400, "invalid_request", message)
        seen[event.event_id] = n


@_guarded(item_list=False)
def events(request: Request, rt: Runtime) -> Reply:
    batch = web.body(EventBatch, request, rt.settings.max_body_bytes)
    _repeated_event_id(batch)
    accepted = rt.events.put_events(batch)
    # Events whose event_id was stored before (a retried request) are not stored twice.
    repeated = len(batch.events) - accepted
    return json_reply(202, {"accepted": accepted} | ({"duplicates": repeated} if repeated else {}))


@_guarded(item_list=False)
def users(request: Request, rt: Runtime) -> Reply:
    batch = web.body(UserBatch, request, rt.settings.max_body_bytes)
    return json_reply(202, {"accepted": rt.events.put_users(batch.users)})


@_guarded(item_list=False)
def items(request: Request, rt: Runtime) -> Reply:
    batch = web.body(ItemBatch, request, rt.settings.max_body_bytes)
    return json_reply(202, {"accepted": rt.events.put_items(batch.items)})


def health(_request: Request | None = None) -> Reply:
    """No auth, no secrets: the provider's state, its current problems and the fallbacks this
    process served by reason. 200 while it can answer (degraded included: the fallback list
    still serves, and a restart would not mend a broken file); 503 when it cannot."""
    try:
        body: dict[str, object] = runtime.current().serving.health()
        body["fallbacks"] = COUNTER.counts()
        status = 200
    except Exception:
        log.exception("health check failed")
        body, status = {"status": "error", "provider": None}, 503
    return json_reply(status, body, {"Cache-Control": "no-store"})


# -- pages and the API description -----------------------------------------------------------


@_guarded(item_list=False)
def preview(request: Request, rt: Runtime) -> Reply:
    """The Content Card preview (`api.preview`): python-liquid is loaded by this route only, and
    only where it is installed (the development requirements; not the Lambda package)."""
    try:
        from chalicelib.api.preview.page import render_page  # noqa: PLC0415
    except ImportError:
        message = "the preview runs on `python -m chalicelib serve` (python-liquid is not deployed)"
        raise ApiError(404, "not_found", message) from None
    return render_page(request, rt, route)


@_guarded(item_list=False)
def report(_request: Request, rt: Runtime) -> Reply:
    """The evaluation report (`chalicelib.report`), served where the preview is."""
    try:
        from chalicelib.api.preview.console import report_page  # noqa: PLC0415
    except ImportError:
        message = "the report runs on `python -m chalicelib serve` (python-liquid is not deployed)"
        raise ApiError(404, "not_found", message) from None
    return report_page(rt)


def _challenge(handler: Handler) -> Handler:
    """A browser asks for the key (Basic auth, the key as password) when a page answers 401."""

    def wrapped(request: Request) -> Reply:
        reply = handler(request)
        if reply.status == 401:
            reply.headers["WWW-Authenticate"] = 'Basic realm="recommendations", charset="UTF-8"'
        return reply

    wrapped.__name__ = handler.__name__
    return wrapped


@_guarded(item_list=False)
def openapi(_request: Request, rt: Runtime) -> Reply:
    from chalicelib.api.openapi import document  # noqa: PLC0415 - built on first use, then cached

    body = document(list(rt.config.filters))
    return Reply(200, body, {"Content-Type": JSON, "Cache-Control": "no-store"})


# -- routing ---------------------------------------------------------------------------------

ROUTES: dict[str, dict[str, Handler]] = {
    "/recommendations": {"GET": recommendations},
    "/related-items": {"GET": related_items},
    "/rankings": {"POST": rankings},
    "/events": {"POST": events},
    "/users": {"POST": users},
    "/items": {"POST": items},
    "/health": {"GET": health},
    "/preview": {"GET": _challenge(preview)},
    "/report": {"GET": _challenge(report)},
    "/openapi.json": {"GET": openapi},
}


def route(path: str, request: Request) -> Reply:
    """The reply of the route at `path` (404 and 405 in the envelope too)."""
    if path != "/" and path.endswith("/"):
        path = path[:-1]  # as API Gateway does
    methods = ROUTES.get(path)
    if methods is None:
        return error_reply(404, "not_found", "no such route: see the README's HTTP API")
    handler = methods.get(request.method.upper())
    if handler is None:
        allowed = ", ".join(methods)
        message = f"this route answers {allowed} only"
        return error_reply(405, "method_not_allowed", message, {"Allow": allowed})
    return handler(request)
