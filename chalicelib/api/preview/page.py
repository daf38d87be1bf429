"""`GET /preview`: the Content Card Braze would render for a user (or the related-items card of an
item), as an HTML page a marketer can edit.

The card is the message `message.message()` builds (the Connected Content call of the page's
controls, then the card template) rendered by `braze_liquid` with python-liquid; its
connected_content call goes to this app in-process, through the same `routes.route` a real
request takes, with the caller's own credentials: the JSON the template sees is byte for byte
what `GET /recommendations` answers. The page shows the source of the list, the item fields
Liquid can use, the message to paste into Braze, and what the same template renders when the
call fails (a wrong key, an unknown filter) or finds nothing.

The page itself is a Liquid template rendered with autoescape, so every value on it is escaped;
its one script is allowed by its hash in the Content-Security-Policy, which allows no request to
another origin. The rendered card is shown in a sandboxed `srcdoc` frame (no script, no
same-origin access) under the same policy: its images from the shop's host are not loaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from liquid import CachingFileSystemLoader, Environment
from markupsafe import Markup

from chalicelib.api import web
from chalicelib.api.preview import braze_liquid
from chalicelib.api.preview.braze_liquid import Fetch, Rendered, Response
from chalicelib.api.preview.message import (
    RESERVED,
    SAVE_AS,
    PreviewQuery,
    card_template,
    message,
    placeholders,
)
from chalicelib.api.web import ApiError, Reply, Request
from chalicelib.catalogue import CORE_FIELDS
from chalicelib.filters.values import values_from_query
from chalicelib.seam.runtime import Runtime

Route = Callable[[str, Request], Reply]
HERE = Path(__file__).parent
SCRIPT = (HERE / "static" / "preview.js").read_text(encoding="utf-8")
STYLE = (HERE / "static" / "preview.css").read_text(encoding="utf-8")
# The routes a template may call: never /preview itself (a template calling its own preview
# would recurse), never another host (the preview makes no request outside the app).
CALLABLE = frozenset({"/recommendations", "/related-items", "/rankings", "/health"})
MAX_JSON_SHOWN = 60_000
UNKNOWN_FILTER = "no-such-filter"
# A neutral Content Card frame around the rendered HTML (the HTML itself is shown as rendered).
# Images from the shop's host are not loaded: each shows as a grey square with its alt text. A
# srcdoc frame inherits the page's policy; the frame states its own as well, first in its
# document, so that the card's HTML is held to it wherever that HTML is shown.
FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CARD_FRAME = (
    f'<meta http-equiv="Content-Security-Policy" content="{FRAME_CSP}">'
    "<style>body{font:14px system-ui,sans-serif;margin:12px;color:#1d1d26}"
    "a{display:flex;gap:12px;align-items:center;margin:0 0 10px;color:inherit;"
    "text-decoration:none}img{width:64px;height:64px;flex:none;background:#e7e7ef;"
    "border-radius:6px;font-size:9px;overflow:hidden;color:#5b5b6b}</style>"
)


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


CSP = "; ".join(
    [
        "default-src 'none'",
        f"script-src '{_hash(SCRIPT)}'",
        # Cards carry inline style attributes, as email and card HTML does; a style cannot run
        # code, and with no other origin allowed it cannot send anything anywhere.
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# The badge (style) and words of a failure case's outcome.
FAILURE_OUTCOMES = {
    "aborted": ("sent", "not sent (aborted)"),
    "sent": ("blank", "sent anyway"),
    "blank": ("blank", "sent blank"),
    "error": ("error", "Liquid error"),
}

_PAGE_ENV: Environment | None = None


def _page_env() -> Environment:
    global _PAGE_ENV  # noqa: PLW0603 - the page's template, parsed once per process
    if _PAGE_ENV is None:
        _PAGE_ENV = Environment(
            autoescape=True, loader=CachingFileSystemLoader(HERE / "templates", ext=".liquid")
        )
    return _PAGE_ENV


def app_fetch(route: Route, credentials: Mapping[str, str]) -> Fetch:
    """connected_content's call, answered by this app in-process. The template's own `x-api-key`
    (the README's YOUR-KEY placeholder) is replaced by `credentials`."""

    def fetch(method: str, url: str, headers: Mapping[str, str], body: str) -> Response:
        parts = urlsplit(url)
        path = _app_path(parts.path)
        if path is None:
            note = "the preview calls only this app's recommendation routes"
            return Response(599, {}, json.dumps({"error": "not_called", "message": note}))
        sent = {k: v for k, v in headers.items() if k not in ("x-api-key", "authorization")}
        request = Request(
            method=method,
            headers={**sent, **credentials},
            query=parse_qs(parts.query, keep_blank_values=True),
            body=body.encode("utf-8"),
        )
        reply = route(path, request)
        return Response(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.body)

    return fetch


def _app_path(path: str) -> str | None:
    """`/recommendations`, or the same under an API Gateway stage (`/api/recommendations`)."""
    if path in CALLABLE:
        return path
    _, _, rest = path.lstrip("/").partition("/")
    return f"/{rest}" if f"/{rest}" in CALLABLE else None


def _credentials(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in ("x-api-key", "authorization") if headers.get(k)}


def _with_filter(fetch: Fetch, name: str) -> Fetch:
    def changed(method: str, url: str, headers: Mapping[str, str], body: str) -> Response:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True) | {"filter": [name]}
        url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return fetch(method, url, headers, body)

    return changed


def _fixed(status: int, body: str) -> Fetch:
    return lambda method, url, headers, sent: Response(status, {}, body)


def _state(rendered: Rendered) -> tuple[str, str]:
    if rendered.error is not None:
        return "error", "Liquid error"
    if rendered.aborted is not None:
        return "aborted", "aborted: not sent"
    if not rendered.output.strip():
        return "blank", "renders a blank card"
    return "sent", "sent"


def _outcomes(
    text: str, fetch: Fetch, route: Route, attributes: Mapping[str, object]
) -> list[dict[str, str]]:
    wrong_key = app_fetch(route, {"x-api-key": "wrong-" + secrets.token_hex(8)})
    cases = [
        ("with a wrong API key", wrong_key),
        (f"with an unknown filter ({UNKNOWN_FILTER})", _with_filter(fetch, UNKNOWN_FILTER)),
        ("if the list were empty (a filter that leaves nothing)", _fixed(200, "[]")),
        ("with no answer (a timeout, or a 404: Braze saves nothing)", _fixed(404, "")),
    ]
    out = []
    for label, case in cases:
        rendered = braze_liquid.render(text, case, attributes)
        state, _ = _state(rendered)
        # Here aborting is what should happen: a message sent on an error is the problem.
        badge, state_label = FAILURE_OUTCOMES[state]
        call = rendered.calls[0] if rendered.calls else None
        detail = f"HTTP {call.response.status}" if call else "no call made"
        if rendered.aborted is not None:
            detail += f", abort_message({rendered.aborted!r})"
        if rendered.error is not None:
            detail += f", {rendered.error.splitlines()[0]}"
        output = rendered.output.strip() if state == "sent" else ""
        outcome = {"label": label, "state": badge, "state_label": state_label}
        out.append(outcome | {"detail": detail, "output": output})
    return out


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _items_table(value: Any) -> tuple[list[str], list[list[str]]]:
    items = [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []
    columns = [c for c in CORE_FIELDS if any(c in i for i in items)]
    for item in items:
        columns += [k for k in item if k not in columns]
    return columns, [[_cell(i[c]) if c in i else "" for c in columns] for i in items]


def _pretty(body: str) -> str:
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body
    return text if len(text) <= MAX_JSON_SHOWN else text[:MAX_JSON_SHOWN] + "\n…"


def _result(
    query: PreviewQuery, values: Mapping[str, Sequence[str]], route: Route, request: Request
) -> dict[str, Any]:
    text = message(query, values)
    fetch = app_fetch(route, _credentials(request.headers))
    attributes = {"user_id": query.user_id or ""}
    rendered = braze_liquid.render(text, fetch, attributes)
    state, state_label = _state(rendered)
    result: dict[str, Any] = {
        "output": rendered.output.strip(),
        "framed": CARD_FRAME + rendered.output.strip(),  # escaped as a whole into srcdoc
        "aborted": rendered.aborted,
        "error": rendered.error,
        "state": state,
        "state_label": state_label,
        "message": text,
        "outcomes": _outcomes(text, fetch, route, attributes),
        "items": [],
        "columns": [],
        "json": "",
        "call": None,
    }
    if rendered.calls:
        call = rendered.calls[0]
        headers = call.response.headers
        result["columns"], result["items"] = _items_table(call.value)
        result["json"] = _pretty(call.response.body)
        result["call"] = {
            "status": call.response.status,
            "source": headers.get("x-recommendation-source", "error"),
            "reason": headers.get("x-fallback-reason", ""),
            "count": len(result["items"]),
        }
    return result


def served_versions(rt: Runtime) -> dict[str, str | None]:
    """Each campaign and the version it serves (None: nothing deployed yet), as /health says."""
    campaigns = rt.serving.health().get("campaigns")
    if not isinstance(campaigns, dict):
        return {}
    return {str(name): None if v is None else str(v) for name, v in campaigns.items()}


def render_page(request: Request, rt: Runtime, route: Route) -> Reply:
    query = web.query(PreviewQuery, request)
    filters = rt.config.filters
    if query.filter and query.filter not in filters:
        raise ApiError(400, "unknown_filter", f"no filter named {query.filter!r} is configured")
    selected = filters.get(query.filter) if query.filter else None
    given = values_from_query(request.query, RESERVED)
    names = placeholders(selected) if selected else []
    values = {name: given.get(name, []) for name in names}
    options = [{"name": n, "selected": n == query.filter} for n in filters]
    shown = query.model_copy(update={"template": card_template(query)})
    wanted = query.user_id is not None or query.item_id is not None
    html = (
        _page_env()
        .get_template("page")
        .render(
            q=shown.model_dump(),
            route="/related-items" if query.item_id is not None else "/recommendations",
            action="preview",
            filters=options,
            selected_filter={"expression": selected} if selected else None,
            filter_values=[{"name": n, "value": ",".join(values[n])} for n in names],
            result=_result(query, values, route, request) if wanted else None,
            save_as=SAVE_AS,
            campaigns=[{"name": n, "version": v or ""} for n, v in served_versions(rt).items()],
            script=Markup(SCRIPT),  # the project's own file, allowed by its hash
            style=Markup(STYLE),
        )
    )
    return Reply(200, html, dict(HEADERS))
