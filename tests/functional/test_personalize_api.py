"""The HTTP API on the `personalize` provider (the deployed `dev` stage's settings), with fake
Personalize replies and a moto item table: what Braze sees when Personalize answers, and when it
throttles or is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from tests.functional.support import get, ids_of, items_of, post, source_of
from tests.personalize_fakes import (
    CAMPAIGN_ARN,
    GROUP_ARN,
    POPULAR,
    RANKING_ARN,
    SIMS_ARN,
    TABLE,
    FakeRuntime,
    items_reply,
    reply,
    throttled,
)

KEY = {"x-api-key": "aws-test-key"}
QUEUE = "braze-recs-dev-events"  # `python -m deploy sync` writes the stack's name into the stage


@pytest.fixture
def aws_client(item_table: str, tmp_path: Path) -> Iterator[Client]:
    """A client on the `dev` stage of `.chalice/config.json`, with this test's ARNs and key."""
    from app import app

    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    stage = config["stages"]["dev"]
    assert stage["environment_variables"]["RECS_PROVIDER"] == "personalize"
    stage["environment_variables"].update(
        {
            "RECS_API_KEYS": KEY["x-api-key"],
            "RECS_DATASET_GROUP_ARN": GROUP_ARN,
            "RECS_CAMPAIGN_ARN": CAMPAIGN_ARN,
            "RECS_SIMILAR_ITEMS_CAMPAIGN_ARN": SIMS_ARN,
            "RECS_RANKING_CAMPAIGN_ARN": RANKING_ARN,
            "RECS_ITEMS_TABLE": TABLE,
            "RECS_EVENTS_QUEUE": QUEUE,
        }
    )
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    with Client(app, stage_name="dev", project_dir=str(tmp_path)) as client:
        yield client
    runtime.reset()


def test_recommendations_are_personalized_and_decorated(
    aws_client: Client, personalize_runtime: FakeRuntime
) -> None:
    personalize_runtime.on("GetRecommendations", items_reply("i4", "i2"))
    response = get(aws_client, "/recommendations?user_id=u1&num_results=2", KEY)
    assert source_of(response) == "personalized"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert [(i["id"], i["name"]) for i in items_of(response)] == [("i4", "Rake"), ("i2", "Teapot")]


def test_a_throttled_personalize_gives_the_fallback_with_200(
    aws_client: Client, personalize_runtime: FakeRuntime
) -> None:
    personalize_runtime.on("GetRecommendations", throttled())
    response = get(aws_client, "/recommendations?user_id=u1&num_results=3", KEY)
    assert response.status_code == 200
    assert source_of(response) == "fallback"
    assert ids_of(response) == POPULAR[:3]


def test_the_configured_filter_is_sent_by_arn(
    aws_client: Client, personalize_runtime: FakeRuntime
) -> None:
    personalize_runtime.on("GetRecommendations", items_reply("i1"))
    response = get(aws_client, "/recommendations?user_id=u1&filter=exclude-purchased", KEY)
    assert ids_of(response) == ["i1"]
    sent = personalize_runtime.calls[0][1]
    assert sent["filterArn"].endswith(":filter/braze-shop-exclude-purchased")
    assert "filterValues" not in sent


def test_related_items_and_rankings(aws_client: Client, personalize_runtime: FakeRuntime) -> None:
    personalize_runtime.on("GetRecommendations", items_reply("i4", "i1"))
    assert ids_of(get(aws_client, "/related-items?item_id=i1&num_results=5", KEY)) == ["i4"]
    personalize_runtime.on(
        "GetPersonalizedRanking",
        reply(200, {"personalizedRanking": [{"itemId": "i3"}, {"itemId": "missing"}]}),
    )
    response = post(aws_client, "/rankings", {"user_id": "u1", "item_ids": ["missing", "i3"]}, KEY)
    assert (source_of(response), ids_of(response)) == ("personalized", ["i3"])


def test_health_names_the_provider_without_auth(aws_client: Client) -> None:
    body = json.loads(aws_client.http.get("/health").body)
    assert body["provider"] == "personalize"
    assert body["status"] == "ok"


def _queued(queue: str) -> list[dict]:
    from chalicelib import aws

    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


@pytest.fixture
def events_queue(aws_client: Client) -> str:
    from chalicelib import aws

    aws.client("sqs").create_queue(QueueName=QUEUE)
    return QUEUE


def test_events_are_queued_as_the_spec_envelope(aws_client: Client, events_queue: str) -> None:
    body = {
        "user_id": "u1",
        "session_id": "s1",
        "events": [
            {"event_type": "purchase", "item_id": "i1", "timestamp": 1_700_000_000},
            {"event_type": "view", "item_id": "i2", "timestamp": "2024-01-01T00:00:00Z"},
        ],
    }
    response = post(aws_client, "/events", body, KEY)
    assert (response.status_code, json.loads(response.body)) == (202, {"accepted": 2})
    assert _queued(events_queue) == [
        {
            "type": "events",
            "user_id": "u1",
            "session_id": "s1",
            "events": [
                {"event_type": "purchase", "item_id": "i1", "timestamp": 1_700_000_000.0},
                {"event_type": "view", "item_id": "i2", "timestamp": 1_704_067_200.0},
            ],
        }
    ]


def test_items_update_the_catalogue_at_once_and_are_queued(
    aws_client: Client, events_queue: str, personalize_runtime: FakeRuntime
) -> None:
    personalize_runtime.on("GetRecommendations", items_reply("i9", "i1"))
    before = items_of(get(aws_client, "/recommendations?user_id=u1", KEY))
    assert [i["id"] for i in before] == ["i1"]  # i9 is not in the table yet
    items = {"items": [{"item_id": "i9", "properties": {"NAME": "Lamp", "PRICE": 30.5}}]}
    assert post(aws_client, "/items", items, KEY).status_code == 202
    assert _queued(events_queue) == [{"type": "items", **items}]
    after = items_of(get(aws_client, "/recommendations?user_id=u1", KEY))
    assert [(i["id"], i["name"], i["price"]) for i in after] == [
        ("i9", "Lamp", 30.5),
        ("i1", "Garden hose", 12.5),
    ]


def test_large_metadata_is_split_to_fit_sqs_messages(aws_client: Client, events_queue: str) -> None:
    big = "x" * 31_000
    items = {"items": [{"item_id": f"i{n}", "properties": {"text": big}} for n in range(10)]}
    assert post(aws_client, "/items", items, KEY).status_code == 202
    sent = []
    while batch := _queued(events_queue):
        sent.extend(batch)
    assert len(sent) >= 2
    assert all(len(json.dumps(m)) < 256 * 1024 for m in sent)
    assert [i["item_id"] for m in sent for i in m["items"]] == [f"i{n}" for n in range(10)]
