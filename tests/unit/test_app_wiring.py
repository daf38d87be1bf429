"""The event sources `app.py` declares come from the stage's variables alone (Chalice sets them
before it imports the file): a name the stage does not give subscribes nothing, never a guess."""

from __future__ import annotations

from tests.app_loader import load_app


def _sources(app: object) -> dict[str, str]:
    found = {}
    for source in app.event_sources:  # type: ignore[attr-defined]
        kind = type(source).__name__
        found[source.name] = (
            getattr(source, "queue", None)
            or getattr(source, "stream", None)
            or (f"{source.bucket} {source.prefix} {source.events}")
        )
        assert kind in ("SQSEventConfig", "KinesisEventConfig", "S3EventConfig")
    return found


def test_each_event_source_is_named_by_the_stage() -> None:
    app = load_app(
        RECS_EVENTS_QUEUE="braze-recs-prod-events",
        RECS_EVENTS_STREAM="braze-recs-prod-events",
        RECS_IMPORT_BUCKET="braze-recs-prod-123456789012-eu-west-1",
    )
    assert _sources(app) == {
        "ingest_sqs": "braze-recs-prod-events",
        "ingest_kinesis": "braze-recs-prod-events",
        "import_s3": "braze-recs-prod-123456789012-eu-west-1 imports/ ['s3:ObjectCreated:*']",
    }


def test_a_name_the_stage_leaves_out_subscribes_nothing() -> None:
    assert _sources(load_app()) == {}
    app = load_app(RECS_EVENTS_QUEUE="q", RECS_EVENTS_STREAM="off", RECS_IMPORT_BUCKET="")
    assert _sources(app) == {"ingest_sqs": "q"}
