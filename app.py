"""Chalice wiring only: each route turns the current request into a `serving.Request`, calls one
function of `chalicelib.serving`, and returns its reply.

Every Lambda function of the app imports this file, so it imports Chalice and nothing else: each
handler loads the part of `chalicelib` it uses on its first call (the SQS function never builds the
HTTP models, the API function never loads the ingest path), which keeps each cold start to its own
function's cost.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Chalice, Response

if TYPE_CHECKING:
    from chalicelib.serving import Reply

app = Chalice(app_name="braze-personalize-recs")
app.log.setLevel(logging.INFO)
logging.getLogger("recs").setLevel(logging.INFO)

# Accept every content type at the router so that a wrong one gets our JSON 415, not Chalice's.
ANY = ["*/*"]


@app.route("/recommendations", methods=["GET"])
def recommendations() -> Response:
    return _call("recommendations")


@app.route("/related-items", methods=["GET"])
def related_items() -> Response:
    return _call("related_items")


@app.route("/rankings", methods=["POST"], content_types=ANY)
def rankings() -> Response:
    return _call("rankings")


@app.route("/events", methods=["POST"], content_types=ANY)
def events() -> Response:
    return _call("events")


@app.route("/users", methods=["POST"], content_types=ANY)
def users() -> Response:
    return _call("users")


@app.route("/items", methods=["POST"], content_types=ANY)
def items() -> Response:
    return _call("items")


@app.route("/health", methods=["GET"])
def health() -> Response:
    from chalicelib import serving  # noqa: PLC0415 - see the module docstring

    return _reply(serving.health())


# Event sources. Chalice puts the stage's `environment_variables` (.chalice/config.json) into the
# environment before it imports this file, so each stage's package subscribes exactly the queue,
# stream and bucket its stage names; `python -m deploy sync` writes them there from the
# infrastructure stack's outputs, the one source of these names. A name left empty (or a stream
# set to "off") subscribes nothing: never a guessed resource of another stage.
def ingest_sqs(event: Any) -> dict[str, Any]:
    from chalicelib import ingest  # noqa: PLC0415 - the API function never loads boto3 for this

    return ingest.handle_sqs(event.to_dict())


def ingest_kinesis(event: Any) -> None:
    from chalicelib import ingest  # noqa: PLC0415

    ingest.handle_kinesis(event.to_dict())


def import_s3(event: Any) -> None:
    from chalicelib import imports  # noqa: PLC0415
    from chalicelib.config import load_config  # noqa: PLC0415
    from chalicelib.settings import Settings  # noqa: PLC0415

    settings = Settings()
    imports.handle_s3(event.to_dict(), settings, load_config(settings.config))


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


def _call(route: str) -> Response:
    from chalicelib import serving  # noqa: PLC0415 - see the module docstring

    handler: Callable[[serving.Request], Reply] = getattr(serving, route)
    req = app.current_request
    query = req.query_params
    request = serving.Request(
        method=req.method,
        headers={k.lower(): v for k, v in req.headers.items()},
        query={k: query.getlist(k) for k in query} if query else {},
        body=req.raw_body or b"",
    )
    return _reply(handler(request))


def _reply(reply: Reply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers=reply.headers)
