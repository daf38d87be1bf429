"""Recommendation ids and served lists (SPEC section 11): every answer of the three item-list routes
carries `X-Recommendation-Id` (fallbacks included), item URLs can carry it, and what was served
is kept per user with the Braze campaign or Canvas step that asked, on both providers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from chalice.test import Client

from chalicelib import aws
from chalicelib.api import routes, web
from chalicelib.providers.local.loop import LocalLoop
from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT
from chalicelib.vocabulary import ServedList
from tests.currents_support import create_served_table
from tests.functional.support import get, ids_of, items_of, post, recs_path, source_of
from tests.personalize_fakes import CAMPAIGN_ARN, FakeRuntime, items_reply

SERVED_TABLE = "recs-served"


def _rid(response: Any) -> str:
    rid = response.headers["X-Recommendation-Id"]
    assert 0 < len(rid) <= 40  # PutEvents' recommendationId limit
    return str(rid)


def test_every_item_list_route_answers_with_a_recommendation_id(client: Client) -> None:
    personal = get(client, recs_path("u2", num_results=5))
    fallback = get(client, recs_path("nobody-at-all", num_results=5))
    related = get(client, "/related-items?item_id=garden-1&num_results=5&user_id=u1")
    ranked = post(client, "/rankings", {"user_id": "u1", "item_ids": ["garden-1", "toys-2"]})
    assert source_of(personal) == "personalized" and _rid(personal).startswith("rid-")
    assert source_of(fallback) == "fallback" and _rid(fallback).startswith("fb-")
    ids = {_rid(r) for r in (personal, fallback, related, ranked)}
    assert len(ids) == 4  # one id per answer


def test_what_was_served_is_kept_with_the_campaign_and_version(client: Client) -> None:
    before = time.time()
    response = get(client, recs_path("u2", num_results=7, campaign="cmp-1"))
    rid, shown = _rid(response), ids_of(response)
    loop = runtime.current().loop
    served = loop.served_to("u2", "cmp-1", time.time())
    assert served is not None
    assert served.recommendation_id == rid
    assert list(served.item_ids) == shown  # in the order the user saw them
    assert served.campaign == "cmp-1" and served.route == "recommendations"
    health = json.loads(get(client, "/health").body)
    assert served.solution_version == health["model_version"]
    assert before <= served.served_at <= time.time()
    assert loop.served_to("u2", "another-campaign", time.time()) is None
    # A Canvas step joins the same way; an empty campaign (a test send) is none.
    step = get(client, recs_path("u3", canvas_step="step-9", campaign=""))
    kept = loop.served_to("u3", "step-9", time.time())
    assert kept is not None and kept.recommendation_id == _rid(step) and kept.campaign is None


def test_fallback_and_ranking_answers_are_kept_too(client: Client) -> None:
    fallback = get(client, recs_path("stranger", num_results=3, campaign="c"))
    ranked = post(
        client,
        "/rankings",
        {"user_id": "u1", "item_ids": ["toys-1", "garden-1"], "campaign": "c2"},
    )
    loop = runtime.current().loop
    kept = loop.served_to("stranger", "c", time.time())
    assert kept is not None and kept.source == "fallback"
    assert kept.recommendation_id == _rid(fallback) and kept.solution_version is None
    kept = loop.served_to("u1", "c2", time.time())
    assert kept is not None and kept.route == "rankings"
    assert list(kept.item_ids) == ids_of(ranked)


def test_item_urls_carry_the_recommendation_id(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    monkeypatch.setenv(
        "RECS_ITEM_URL_TEMPLATE", "https://shop.example/p/{id}?rid={recommendation_id}"
    )
    runtime.reset()
    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as c:
        response = get(c, recs_path("u1", num_results=3))
        again = get(c, recs_path("u1", num_results=3))
    rid = _rid(response)
    for item in items_of(response):
        assert item["url"] == f"https://shop.example/p/{item['id']}?rid={rid}"
    assert all(_rid(again) in item["url"] for item in items_of(again))
    assert _rid(again) != rid
    runtime.reset()


def test_too_long_campaign_is_400_and_keeps_nothing(client: Client) -> None:
    response = get(client, recs_path("u1", campaign="c" * 257))
    assert response.status_code == 400
    assert runtime.current().loop.served_to("u1", None, time.time()) is None


def test_a_loop_that_fails_never_breaks_the_answer(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_served: ServedList) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(runtime.current().loop, "record_served", broken)
    response = get(client, recs_path("u2", num_results=4))
    assert len(ids_of(response)) == 4 and _rid(response)


def _served(rid: str, user: str, at: float) -> ServedList:
    return ServedList(rid, user, ["a", "b"], "recommendations", "personalized", at)


def test_served_lists_are_bounded_in_number_and_age(tmp_path: Path) -> None:
    loop = LocalLoop(tmp_path, ttl_days=1, max_records=1000)
    now = time.time()
    for n in range(1500):
        loop.record_served(_served(f"r{n}", f"u{n % 7}", now - 1500 + n))
    loop.record_served(_served("old", "u1", now - 3 * 86_400))
    loop.prune(now)
    kept = list(loop.history(0)[0])
    assert len(kept) == 1000
    assert {s.recommendation_id for s in kept} == {f"r{n}" for n in range(500, 1500)}
    latest = loop.served_to("u3", None, now)
    assert latest is not None and latest.recommendation_id == "r1494"  # 1494 % 7 == 3
    assert latest.user_id == "u3"


# -- the personalize provider: Personalize's recommendationId, a DynamoDB table with a TTL ------


@pytest.fixture
def served_table(item_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECS_SERVED_TABLE", SERVED_TABLE)
    runtime.reset()
    create_served_table(aws.client("dynamodb"), SERVED_TABLE)
    yield SERVED_TABLE


def _describe_campaign(params: dict[str, Any], **_: Any) -> Any:
    body = json.loads(params["body"])
    campaign = {"campaignArn": body["campaignArn"], "solutionVersionArn": "arn:sv/v7"}
    return AWSResponse("https://fake", 200, {}, None), {"campaign": campaign}


def test_on_aws_personalize_recommendation_id_is_served_and_kept(
    served_table: str, personalize_runtime: FakeRuntime
) -> None:
    personalize_runtime.on("GetRecommendations", items_reply("i3", "i1", "i2"))
    describe = aws.client("personalize", fast=True)
    describe.meta.events.register("before-call.personalize.DescribeCampaign", _describe_campaign)
    query = {"user_id": ["u1"], "num_results": ["3"], "campaign": ["cmp-7"]}
    request = web.Request("GET", {"x-api-key": "aws-test-key"}, query)
    response = routes.route("/recommendations", request)
    assert response.status == 200
    assert response.headers["X-Recommendation-Id"] == "RID-1"
    loop = runtime.current().loop
    kept = loop.served_to("u1", "cmp-7", time.time())
    assert kept is not None
    assert kept.recommendation_id == "RID-1"
    assert list(kept.item_ids) == ["i3", "i1", "i2"]
    assert kept.solution_version == "arn:sv/v7"
    assert personalize_runtime.calls[0][1]["campaignArn"] == CAMPAIGN_ARN
    [item] = aws.client("dynamodb").scan(TableName=served_table)["Items"]
    ttl = int(item["expires_at"]["N"]) - time.time()
    assert 29 * 86_400 < ttl <= 30 * 86_400  # RECS_SERVED_TTL_DAYS's default, DynamoDB's TTL
