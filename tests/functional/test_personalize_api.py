"""The HTTP API on the `personalize` provider (the deployed `dev` stage's settings), with fake
Personalize replies and a moto item table: what Braze sees when Personalize answers, and when it
throttles or is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import runtime
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
