"""Chalice wiring only: each route turns the current request into a `serving.Request`, calls one
function of `chalicelib.serving`, and returns its reply."""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalice import Chalice, Response

from chalicelib import serving

app = Chalice(app_name="braze-personalize-recs")
app.log.setLevel(logging.INFO)
logging.getLogger("recs").setLevel(logging.INFO)

# Accept every content type at the router so that a wrong one gets our JSON 415, not Chalice's.
ANY = ["*/*"]


@app.route("/recommendations", methods=["GET"])
def recommendations() -> Response:
    return _call(serving.recommendations)


@app.route("/related-items", methods=["GET"])
def related_items() -> Response:
    return _call(serving.related_items)


@app.route("/rankings", methods=["POST"], content_types=ANY)
def rankings() -> Response:
    return _call(serving.rankings)


@app.route("/events", methods=["POST"], content_types=ANY)
def events() -> Response:
    return _call(serving.events)


@app.route("/users", methods=["POST"], content_types=ANY)
def users() -> Response:
    return _call(serving.users)


@app.route("/items", methods=["POST"], content_types=ANY)
def items() -> Response:
    return _call(serving.items)


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _reply(serving.health())


def _call(handler: Callable[[serving.Request], serving.Reply]) -> Response:
    req = app.current_request
    query = req.query_params
    request = serving.Request(
        method=req.method,
        headers={k.lower(): v for k, v in req.headers.items()},
        query={k: query.getlist(k) for k in query} if query else {},
        body=req.raw_body or b"",
    )
    return _reply(handler(request))


def _reply(reply: serving.Reply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers=reply.headers)
