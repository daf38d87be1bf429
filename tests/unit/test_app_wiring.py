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
        # Braze Currents' files: the import bucket's currents/ unless a bucket of their own
        "ingest_currents": "braze-recs-prod-123456789012-eu-west-1 currents/ "
        "['s3:ObjectCreated:*']",
    }


def test_currents_may_have_a_bucket_of_their_own() -> None:
    app = load_app(RECS_IMPORT_BUCKET="imports-b", RECS_CURRENTS_BUCKET="braze-currents-b")
    sources = _sources(app)
    assert sources["ingest_currents"] == "braze-currents-b currents/ ['s3:ObjectCreated:*']"
    assert sources["import_s3"] == "imports-b imports/ ['s3:ObjectCreated:*']"


def test_a_name_the_stage_leaves_out_subscribes_nothing() -> None:
    assert _sources(load_app()) == {}
    app = load_app(RECS_EVENTS_QUEUE="q", RECS_EVENTS_STREAM="off", RECS_IMPORT_BUCKET="")
    assert _sources(app) == {"ingest_sqs": "q"}
