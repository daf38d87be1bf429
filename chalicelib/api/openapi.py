"""`GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API, generated from the pydantic
models of its requests (`chalicelib.payloads`, the preview's query) and of its responses (below):
every route, parameter, body, response and header, and the `{"error", "message"}` envelope with
the codes each status carries. The configured filter names are its `filter` enum, so the
description is the configuration's. Built once per process and configuration.

The response models here describe what `routes` writes (it writes JSON directly, for speed);
`tests/functional/test_openapi.py` runs schemathesis over every route to keep them in step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from chalicelib.api.preview.message import PreviewQuery
from chalicelib.payloads import (
    EventBatch,
    ItemBatch,
    RankingRequest,
    RecommendationsQuery,
    RelatedItemsQuery,
    UserBatch,
)

ErrorCode = Literal[
    "invalid_request",
    "invalid_json",
    "unknown_filter",
    "invalid_filter",
    "missing_filter_value",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "unavailable",
    "internal_error",
]
CODES: dict[int, list[str]] = {
    400: [
        "invalid_request",
        "invalid_json",
        "unknown_filter",
        "invalid_filter",
        "missing_filter_value",
    ],
    401: ["unauthorized"],
    404: ["not_found"],
    413: ["payload_too_large"],
    415: ["unsupported_media_type"],
    503: ["unavailable"],
}
REF = "#/components/schemas/{model}"


class Error(BaseModel):
    """Every error the app answers: a code to branch on and a sentence for a person."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorCode
    message: str = Field(min_length=1)


class RecommendedItem(BaseModel):
    """One render-ready item: `id`, `url` and `image` always; `name`, `price` and the other
    fields of the item catalogue where the item has them."""

    model_config = ConfigDict(extra="allow")
    id: str
    url: str = Field(description="absolute http(s) URL of the item's page")
    image: str = Field(description="absolute http(s) URL of the item's image")
    name: str | None = None
    price: float | str | None = None


class Accepted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accepted: int = Field(ge=0, description="records stored")
    duplicates: int | None = Field(
        default=None, ge=1, description="events whose event_id was stored before (not stored)"
    )


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok", "degraded", "error"]
    provider: str | None
    model_version: str | None = None
    campaigns: dict[str, str | None] | None = None
    fallbacks: dict[str, int] | None = Field(
        default=None, description="fallback lists this process served, by reason"
    )


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


ITEM_LIST_HEADERS = {
    "X-Recommendation-Source": _header(
        "personalized, or fallback (popular items: unknown user or item, no model, provider "
        "failing or slow)",
        {"type": "string", "enum": ["personalized", "fallback"]},
        True,
    ),
    "Cache-Control": _header(
        "`public, max-age=N` (RECS_CACHE_MAX_AGE) on GET routes; `no-store` on rankings and "
        "on a list served after an internal error",
        {"type": "string"},
        True,
    ),
    "X-Fallback-Reason": _header(
        "why the fallback list was served (no_model, unknown_user, provider_error, ...)",
        {"type": "string"},
    ),
    "X-Response-Trimmed": _header(
        "present when item fields or items were left out to stay within RECS_MAX_RESPONSE_BYTES",
        {"type": "string"},
    ),
}
NO_STORE = {"Cache-Control": _header("no-store", {"type": "string", "const": "no-store"}, True)}


def _error(status: int, description: str) -> dict[str, Any]:
    codes = {"properties": {"error": {"enum": CODES[status]}}}
    schema = {"allOf": [{"$ref": REF.format(model="Error")}, codes]}
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = _header(
            "on /preview only: Basic, so that a browser asks for the key", {"type": "string"}
        )
    if status == 503:
        headers["Retry-After"] = _header("seconds", {"type": "string", "pattern": r"^\d+$"}, True)
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    return {"description": description, "headers": headers, "content": content}


def _parameters(model: type[BaseModel], filters: Sequence[str]) -> list[dict[str, Any]]:
    """A query model's fields as query parameters (`filter`: one of the configured names)."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        kept = {k: v for k, v in prop.items() if k not in ("title", "default", "description")}
        if name == "filter":
            kept = {"type": "string", "enum": list(filters)}
        field = model.model_fields[name]
        description = field.description or ""
        if field.default is not None:
            description = f"{description} (default {field.default})".strip()
        param = {"name": name, "in": "query", "required": name in required, "schema": kept}
        out.append(param | ({"description": description} if description else {}))
    return [*out, FILTER_VALUES]


FILTER_VALUES = {
    "name": "filter_values",
    "in": "query",
    "description": "values of the filter's $PLACEHOLDERs, by name (`CATEGORY=a,b` or repeated)",
    "style": "form",
    "explode": True,
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
}


def _operation(
    summary: str,
    responses: dict[int, Any],
    *,
    parameters: list[Any] | None = None,
    body: str | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if body:
        content = {"application/json": {"schema": {"$ref": REF.format(model=body)}}}
        operation["requestBody"] = {"required": True, "content": content}
    if not auth:
        operation["security"] = []
    operation["responses"] = {str(k): v for k, v in sorted(responses.items())}
    return operation


def _paths(filters: Sequence[str]) -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": REF.format(model="RecommendedItem")}}
    listing = _json("the items, best first", items, ITEM_LIST_HEADERS)
    unauthorized = _error(401, "no or a wrong API key")
    reads = {200: listing, 400: _error(400, "invalid parameters"), 401: unauthorized}
    body_errors = {
        400: _error(400, "invalid body"),
        401: unauthorized,
        413: _error(413, "body over RECS_MAX_BODY_BYTES"),
        415: _error(415, "not application/json"),
    }
    accepted = _json("stored", {"$ref": REF.format(model="Accepted")}, {})
    busy = _error(503, "the store cannot take writes now; retry after Retry-After")
    writes = {202: accepted, **body_errors, 503: busy}
    text = {"type": "string"}
    page_headers = {
        "Content-Security-Policy": _header("no other origin; its one script by hash", text, True),
        "X-Content-Type-Options": _header("nosniff", text, True),
        "X-Frame-Options": _header("DENY: the page is never framed", text, True),
        "Referrer-Policy": _header("no-referrer", text, True),
    }
    page = {
        "description": "the page",
        "headers": NO_STORE | page_headers,
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    no_script = _header("no script, no request: inline styles and data: images only", text, True)
    report = page | {
        "description": "the report (no script)",
        "headers": NO_STORE | page_headers | {"Content-Security-Policy": no_script},
    }
    missing = _error(404, "not served here (python-liquid is not deployed to Lambda)")
    # A long template in the query can exceed what a server reads of a request line: `chalice
    # local` (http.server) answers 414 itself, with its own HTML page, before the app sees it.
    too_long = {"description": "the URL is longer than the server reads (chalice local: 64 KiB)"}
    health = {"$ref": REF.format(model="Health")}
    document = {"type": "object", "description": "this document"}
    return {
        "/recommendations": {
            "get": _operation(
                "Personalized items for a user (Braze Connected Content)",
                reads,
                parameters=_parameters(RecommendationsQuery, filters),
            )
        },
        "/related-items": {
            "get": _operation(
                "Items similar to an item (popular items for an unknown item)",
                reads,
                parameters=_parameters(RelatedItemsQuery, filters),
            )
        },
        "/rankings": {
            "post": _operation(
                "The given items in personalized order",
                {200: listing, **body_errors},
                body="RankingRequest",
            )
        },
        "/events": {
            "post": _operation("Interaction events of one user", writes, body="EventBatch")
        },
        "/users": {"post": _operation("User metadata upserts", writes, body="UserBatch")},
        "/items": {
            "post": _operation(
                "Item metadata upserts (the catalogue too)", writes, body="ItemBatch"
            )
        },
        "/health": {
            "get": _operation(
                "The provider's state (no API key)",
                {
                    200: _json("the provider's state", health, NO_STORE),
                    503: _json("it cannot answer", health, NO_STORE),
                },
                auth=False,
            )
        },
        "/preview": {
            "get": _operation(
                "The Content Card Braze would render (an HTML page)",
                {200: page, 400: reads[400], 401: unauthorized, 404: missing, 414: too_long},
                parameters=_parameters(PreviewQuery, filters),
            )
        },
        "/report": {
            "get": _operation(
                "The evaluation report of the solution versions, what each campaign serves, and "
                "what the lists served in the last 30 days did (attribution)",
                {200: report, 401: unauthorized, 404: missing},
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This description",
                {200: _json("OpenAPI 3.1", document, NO_STORE), 401: unauthorized},
            )
        },
    }


@lru_cache(maxsize=4)
def _document(filters: tuple[str, ...]) -> str:
    requests: list[type[BaseModel]] = [EventBatch, UserBatch, ItemBatch, RankingRequest]
    responses: list[type[BaseModel]] = [Error, RecommendedItem, Accepted, Health]
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((m, "validation") for m in requests),
        *((m, "serialization") for m in responses),
    ]
    _, schemas = models_json_schema(models, ref_template=REF)
    # The configured filters are the only names a request may give.
    ranking = schemas["$defs"]["RankingRequest"]["properties"]
    ranking["filter"] = {"anyOf": [{"type": "string", "enum": list(filters)}, {"type": "null"}]}
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Braze × Amazon Personalize recommendations",
            "version": "1",
            "description": "Every route but /health needs the API key: header x-api-key, or "
            "HTTP Basic auth with the key as password. Errors are {error, message}.",
        },
        "paths": _paths(filters),
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "any user name, the API key as password",
                },
            },
        },
        "security": [{"apiKey": []}, {"basic": []}],
    }
    return json.dumps(spec, ensure_ascii=False, indent=1)


def document(filters: Sequence[str]) -> str:
    """The description as JSON text, with `filters` (the configured names) as filter's enum."""
    return _document(tuple(filters))
