"""Chalice wiring only: each route turns the current request into a `web.Request`, hands it to
`chalicelib.api.routes.route`, and returns its reply.

Every Lambda function of the app imports this file, so it imports Chalice and nothing else: each
handler loads the part of `chalicelib` it uses on its first call (the SQS function never builds the
HTTP models, the API function never loads the ingest path), which keeps each cold start to its own
function's cost.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from chalice import Chalice, Response

if TYPE_CHECKING:
    from chalicelib.api.web import Reply

app = Chalice(app_name="braze-personalize-recs")
app.log.setLevel(logging.INFO)
logging.getLogger("recs").setLevel(logging.INFO)

# Every route takes every method and any content type, so that what Chalice would refuse itself
# (415 before auth, 405, both as {"Code","Message"}) reaches `routes.route`, which answers in
# the app's envelope; `/{proxy+}` brings unknown paths there too (404 instead of API Gateway's
# 403 "Missing Authentication Token").
ANY_TYPE = ["*/*"]
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@app.route("/recommendations", methods=ALL_METHODS, content_types=ANY_TYPE)
def recommendations() -> Response:
    return _call("/recommendations")


@app.route("/related-items", methods=ALL_METHODS, content_types=ANY_TYPE)
def related_items() -> Response:
    return _call("/related-items")


@app.route("/rankings", methods=ALL_METHODS, content_types=ANY_TYPE)
def rankings() -> Response:
    return _call("/rankings")


@app.route("/events", methods=ALL_METHODS, content_types=ANY_TYPE)
def events() -> Response:
    return _call("/events")


@app.route("/users", methods=ALL_METHODS, content_types=ANY_TYPE)
def users() -> Response:
    return _call("/users")


@app.route("/items", methods=ALL_METHODS, content_types=ANY_TYPE)
def items() -> Response:
    return _call("/items")


@app.route("/health", methods=ALL_METHODS, content_types=ANY_TYPE)
def health() -> Response:
    return _call("/health")


@app.route("/preview", methods=ALL_METHODS, content_types=ANY_TYPE)
def preview() -> Response:
    return _call("/preview")


@app.route("/report", methods=ALL_METHODS, content_types=ANY_TYPE)
def report() -> Response:
    return _call("/report")


@app.route("/openapi.json", methods=ALL_METHODS, content_types=ANY_TYPE)
def openapi() -> Response:
    return _call("/openapi.json")


# Chalice reads no view argument from a greedy `{proxy+}` (its parameter pattern is `{\w+}`).
@app.route("/{proxy+}", methods=ALL_METHODS, content_types=ANY_TYPE)
def unknown_route() -> Response:
    return _call("/{proxy+}")  # never a route of the API: routes answers 404


# Event sources. Chalice puts the stage's `environment_variables` (.chalice/config.json) into the
# environment before it imports this file, so each stage's package subscribes exactly the queue,
# stream and bucket its stage names; `python -m deploy sync` writes them there from the
# infrastructure stack's outputs, the one source of these names. A name left empty (or a stream
# set to "off") subscribes nothing: never a guessed resource of another stage.
def ingest_sqs(event: Any) -> dict[str, Any]:
    from chalicelib.handlers import ingest  # noqa: PLC0415 - the API function never loads boto3 for this

    return ingest.handle_sqs(event.to_dict())


def ingest_kinesis(event: Any) -> None:
    from chalicelib.handlers import ingest  # noqa: PLC0415

    ingest.handle_kinesis(event.to_dict())


def import_s3(event: Any) -> None:
    from chalicelib.handlers import imports  # noqa: PLC0415

    imports.handle_s3(event.to_dict())


def ingest_currents(event: Any) -> None:
    from chalicelib.handlers import currents  # noqa: PLC0415 - fastavro loads here alone

    currents.handle_s3(event.to_dict())


def _named(variable: str) -> str:
    value = os.environ.get(variable, "").strip()
    return "" if value.lower() == "off" else value


if _named("RECS_EVENTS_QUEUE"):
    ingest_sqs = app.on_sqs_message(  # type: ignore[assignment]
        queue=_named("RECS_EVENTS_QUEUE"),
        batch_size=100,
        maximum_batching_window_in_seconds=1,
    )(ingest_sqs)

if _named("RECS_EVENTS_STREAM"):
    ingest_kinesis = app.on_kinesis_record(  # type: ignore[assignment]
        stream=_named("RECS_EVENTS_STREAM"),
        batch_size=100,
        maximum_batching_window_in_seconds=1,
        starting_position="TRIM_HORIZON",
    )(ingest_kinesis)

if _named("RECS_IMPORT_BUCKET"):
    import_s3 = app.on_s3_event(  # type: ignore[assignment]
        bucket=_named("RECS_IMPORT_BUCKET"),
        events=["s3:ObjectCreated:*"],
        prefix="imports/",
    )(import_s3)

# Braze Currents' Avro files (SPEC section 11): their own bucket, or the import bucket's
# `currents/` (the prefixes keep the two functions' notifications apart).
if _named("RECS_CURRENTS_BUCKET") or _named("RECS_IMPORT_BUCKET"):
    ingest_currents = app.on_s3_event(  # type: ignore[assignment]
        bucket=_named("RECS_CURRENTS_BUCKET") or _named("RECS_IMPORT_BUCKET"),
        events=["s3:ObjectCreated:*"],
        prefix="currents/",
        suffix=".avro",
    )(ingest_currents)


def _call(path: str) -> Response:
    from chalicelib.api import routes, web  # noqa: PLC0415 - see the module docstring

    req = app.current_request
    query = req.query_params
    request = web.Request(
        method=req.method,
        headers={k.lower(): v for k, v in req.headers.items()},
        query={k: query.getlist(k) for k in query} if query else {},
        body=req.raw_body or b"",
    )
    return _reply(routes.route(path, request))


def _reply(reply: Reply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers=reply.headers)
