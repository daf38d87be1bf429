"""The HTTP edge without a framework: `Request` and `Reply`, the `{"error", "message"}` envelope,
and the parsing of query strings and JSON bodies into the pydantic models.

Both servers (Chalice, in Lambda or `chalice local`, and the production WSGI server) turn their
request into a `Request` and send the `Reply` back as it is, so they answer alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.payloads import describe

Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"


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
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_reply(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    body = json.dumps({"error": code, "message": message}, ensure_ascii=False)
    return Reply(
        status, body, {"Content-Type": JSON, "Cache-Control": "no-store", **(headers or {})}
    )


def json_reply(status: int, data: object, headers: Mapping[str, str] | None = None) -> Reply:
    # allow_nan=False: a NaN that got this far fails here, loudly, rather than reach a parser.
    body = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return Reply(status, body, {"Content-Type": JSON, **(headers or {})})


def validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", describe(exc)) from None


def query(model: type[Model], request: Request) -> Model:
    return validate(model, {k: v[-1] for k, v in request.query.items() if v})


def _all_finite(value: Any) -> bool:
    """No NaN or Infinity anywhere: the usual answer, found without building the paths that
    `non_finite_at` names (which cost a POST /events more than its validation did)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


def non_finite_at(value: Any, where: str = "") -> str | None:
    """The path of the first NaN or Infinity in parsed JSON (`events[0].event_value`), if any.
    Python's parser takes them (and 1e999 as Infinity); JSON has no such numbers, and one that
    reached the store would make later responses unparseable."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where or "the body"
    if isinstance(value, dict):
        items: Any = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{n}]", v) for n, v in enumerate(value))
    else:
        return None
    return next((found for key, v in items if (found := non_finite_at(v, key))), None)


def body(model: type[Model], request: Request, limit: int) -> Model:
    """The JSON object body as `model`: 413 over `limit` bytes, 415 when it is declared as
    anything but JSON, 400 when it is not JSON (NaN and Infinity are not) or not valid."""
    if len(request.body) > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if content_type != JSON:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(request.body)
        bad = None if _all_finite(data) else non_finite_at(data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: RecursionError
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if bad:
        message = f"{bad}: NaN, Infinity and numbers out of range are not JSON numbers"
        raise ApiError(400, "invalid_json", message)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return validate(model, data)
