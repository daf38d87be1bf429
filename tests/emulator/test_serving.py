"""An unmodified boto3 script against the emulator: a dataset group, a CSV imported from S3, a
trained version with Personalize's metrics, a campaign with a filter, recommendations that
respond to PutEvents, items replaced by PutItems, rankings, batch inference through S3, a campaign
update, and everything still there after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from tests.emulator_support import (
    BUCKET,
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    ROLE,
    Emulated,
    items_csv,
    shop_csv,
    wait,
)

METRICS = {
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
}


@dataclass
class Shop:
    emulated: Emulated
    group: str
    items: str
    version: str
    campaign: str
    tracking_id: str
    no_purchases: str
    category: str


@pytest.fixture
def shop(start_emulator: Callable[..., Emulated]) -> Shop:
    e = start_emulator()
    c = e.control
    group = e.group()
    interactions = e.dataset(group, "Interactions", INTERACTIONS_SCHEMA)
    items = e.dataset(group, "Items", ITEMS_SCHEMA)
    assert e.import_csv(interactions, "imports/interactions.csv", shop_csv())["status"] == "ACTIVE"
    assert e.import_csv(items, "imports/items.csv", items_csv())["status"] == "ACTIVE"
    tracker = c.create_event_tracker(name="events", datasetGroupArn=group)
    e.active("event_tracker", tracker["eventTrackerArn"])
    no_purchases = c.create_filter(
        name="no-purchases",
        datasetGroupArn=group,
        filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
    )["filterArn"]
    category = c.create_filter(
        name="in-category",
        datasetGroupArn=group,
        filterExpression="INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    )["filterArn"]
    e.active("filter", no_purchases)
    e.active("filter", category)
    version = e.solution_version(group, "up")
    campaign = e.campaign(
        "recs", version, campaignConfig={"enableMetadataWithRecommendations": True}
    )
    return Shop(e, group, items, version, campaign, tracker["trackingId"], no_purchases, category)


def ids(reply: dict) -> list[str]:
    return [i["itemId"] for i in reply["itemList"]]


def test_metrics_have_personalizes_names(shop: Shop) -> None:
    solution = shop.version.rsplit("/", 1)[0]
    described = shop.emulated.control.describe_solution(solutionArn=solution)["solution"]
    assert described["latestSolutionVersion"]["solutionVersionArn"] == shop.version
    metrics = shop.emulated.control.get_solution_metrics(solutionVersionArn=shop.version)
    assert set(metrics["metrics"]) == METRICS
    assert metrics["metrics"]["normalized_discounted_cumulative_gain_at_10"] > 0.3


def test_recommendations_follow_taste_and_respond_to_events_at_once(shop: Shop) -> None:
    rt, ev = shop.emulated.runtime, shop.emulated.events
    reply = rt.get_recommendations(campaignArn=shop.campaign, userId="u1", numResults=10)
    assert len(reply["itemList"]) == 10
    assert reply["recommendationId"].startswith("RID-")
    assert all(isinstance(i["score"], float) for i in reply["itemList"])
    assert sum(10 <= int(i[1:]) < 20 for i in ids(reply)) >= 7  # u1 is of the second taste
    cold = rt.get_recommendations(campaignArn=shop.campaign, userId="new", numResults=5)
    scores = [i["score"] for i in cold["itemList"]]  # a cold user gets the popular items
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) < 1
    newcomer = ids(cold)
    now = time.time()
    ev.put_events(
        trackingId=shop.tracking_id,
        userId="new",
        sessionId="s1",
        eventList=[
            {"eventType": "view", "itemId": f"i{30 + k}", "sentAt": now + k} for k in range(5)
        ],
    )
    after = ids(rt.get_recommendations(campaignArn=shop.campaign, userId="new", numResults=5))
    assert after != newcomer
    assert all(30 <= int(i[1:]) < 40 for i in after)


def test_filters_by_arn_with_values(shop: Shop) -> None:
    rt = shop.emulated.runtime
    rows = [line.split(",") for line in shop_csv().splitlines()[1:]]
    bought = {item for user, item, kind, _ in rows if user == "u1" and kind == "purchase"}
    plain = ids(rt.get_recommendations(campaignArn=shop.campaign, userId="u1", numResults=40))
    filtered = ids(
        rt.get_recommendations(
            campaignArn=shop.campaign, userId="u1", numResults=40, filterArn=shop.no_purchases
        )
    )
    assert bought & set(plain)
    assert not bought & set(filtered)
    assert set(filtered) == set(plain) - bought
    toys = rt.get_recommendations(
        campaignArn=shop.campaign,
        userId="u1",
        numResults=5,
        filterArn=shop.category,
        filterValues={"CATEGORY": '"toys"'},
        metadataColumns={"ITEMS": ["CATEGORY", "PRICE"]},
    )
    assert [i["metadata"]["CATEGORY"] for i in toys["itemList"]] == ["toys"] * 5
    with pytest.raises(rt.exceptions.InvalidInputException):  # INCLUDE needs its value
        rt.get_recommendations(campaignArn=shop.campaign, userId="u1", filterArn=shop.category)


def test_runtime_limits_and_unknown_campaigns(shop: Shop) -> None:
    rt, ev = shop.emulated.runtime, shop.emulated.events
    assert (
        len(
            rt.get_recommendations(campaignArn=shop.campaign, userId="u1", numResults=500)[
                "itemList"
            ]
        )
        == 40
    )
    with pytest.raises(rt.exceptions.InvalidInputException):  # botocore lets 501 through
        rt.get_recommendations(campaignArn=shop.campaign, userId="u1", numResults=501)
    with pytest.raises(rt.exceptions.InvalidInputException):  # 50 with metadata
        rt.get_recommendations(
            campaignArn=shop.campaign,
            userId="u1",
            numResults=51,
            metadataColumns={"ITEMS": ["PRICE"]},
        )
    with pytest.raises(rt.exceptions.ResourceNotFoundException):
        rt.get_recommendations(campaignArn=shop.campaign + "-gone", userId="u1")
    with pytest.raises(ClientError) as eleven:
        ev.put_events(
            trackingId=shop.tracking_id,
            sessionId="s",
            eventList=[{"eventType": "view", "itemId": "i1", "sentAt": time.time()}] * 11,
        )
    assert eleven.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ev.exceptions.InvalidInputException):
        ev.put_events(
            trackingId=shop.tracking_id,
            sessionId="s",
            eventList=[
                {
                    "eventType": "view",
                    "itemId": "i1",
                    "sentAt": time.time(),
                    "properties": json.dumps({"userId": "x"}),  # a forbidden key
                }
            ],
        )


def test_put_items_replaces_the_record(shop: Shop) -> None:
    rt, ev = shop.emulated.runtime, shop.emulated.events
    ev.put_items(
        datasetArn=shop.items,
        items=[{"itemId": "i12", "properties": json.dumps({"category": "books"})}],
    )
    reply = rt.get_recommendations(
        campaignArn=shop.campaign,
        userId="u1",
        numResults=40,
        filterArn=shop.category,
        filterValues={"CATEGORY": '"books"'},
        metadataColumns={"ITEMS": ["CATEGORY", "PRICE"]},
    )
    moved = [i for i in reply["itemList"] if i["itemId"] == "i12"]
    assert moved and moved[0]["metadata"] == {"CATEGORY": "books"}  # PRICE replaced away
    with pytest.raises(ev.exceptions.InvalidInputException):
        ev.put_items(
            datasetArn=shop.items,
            items=[{"itemId": "i1", "properties": json.dumps({"colour": "red"})}],
        )


def test_personalized_ranking_puts_the_users_taste_first(shop: Shop) -> None:
    e = shop.emulated
    version = e.solution_version(
        shop.group, "ranking", "arn:aws:personalize:::recipe/aws-personalized-ranking"
    )
    campaign = e.campaign("ranking", version)
    ranked = e.runtime.get_personalized_ranking(
        campaignArn=campaign, userId="u2", inputList=["i5", "i25", "i33", "unknown"]
    )["personalizedRanking"]
    assert ranked[0]["itemId"] == "i25"  # u2 likes i20..i29
    assert ranked[-1] == {"itemId": "unknown"}  # items it never saw go last, without score
    with pytest.raises(e.runtime.exceptions.InvalidInputException):
        e.runtime.get_recommendations(campaignArn=campaign, userId="u2")


def test_batch_inference_reads_and_writes_s3(shop: Shop) -> None:
    e = shop.emulated
    lines = [{"userId": "u1"}, {"userId": "u3"}, {"itemId": "i1"}]
    e.s3.put_object(
        Bucket=BUCKET,
        Key="batch/in/users.json",
        Body="\n".join(json.dumps(line) for line in lines).encode(),
    )
    arn = e.control.create_batch_inference_job(
        jobName="nightly",
        solutionVersionArn=shop.version,
        filterArn=shop.no_purchases,
        numResults=5,
        jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/batch/in/users.json"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/batch/out/"}},
        roleArn=ROLE,
    )["batchInferenceJobArn"]
    job = e.active("batch_inference_job", arn)
    assert job["status"] == "ACTIVE"
    body = e.s3.get_object(Bucket=BUCKET, Key="batch/out/users.json.out")["Body"].read()
    out = [json.loads(line) for line in body.decode().splitlines()]
    assert [o["input"] for o in out] == lines
    assert len(out[0]["output"]["recommendedItems"]) == 5
    assert len(out[0]["output"]["scores"]) == 5
    assert out[2]["error"]  # a user-personalization version answers users, not items


def test_a_campaign_update_moves_it_to_the_new_version_and_a_restart_keeps_everything(
    shop: Shop, start_emulator: Callable[..., Emulated]
) -> None:
    e = shop.emulated
    c = e.control
    solution = shop.version.rsplit("/", 1)[0]
    newer = c.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert e.active("solution_version", newer)["status"] == "ACTIVE"
    c.update_campaign(campaignArn=shop.campaign, solutionVersionArn=newer)
    updated = wait(lambda: c.describe_campaign(campaignArn=shop.campaign)["campaign"])
    assert updated["solutionVersionArn"] == newer
    assert updated["latestCampaignUpdate"]["status"] == "ACTIVE"
    before = ids(e.runtime.get_recommendations(campaignArn=shop.campaign, userId="u1"))

    again = start_emulator()  # a new server on the same data directory
    assert again.url != e.url
    groups = again.control.list_dataset_groups()["datasetGroups"]
    assert [g["datasetGroupArn"] for g in groups] == [shop.group]
    after = ids(again.runtime.get_recommendations(campaignArn=shop.campaign, userId="u1"))
    assert after == before
    with pytest.raises(again.control.exceptions.ResourceInUseException):
        again.control.delete_solution(solutionArn=solution)  # its campaign serves it


def test_hpo_tunes_the_ranges_and_reports_the_chosen_values(shop: Shop) -> None:
    c = shop.emulated.control
    solution = c.create_solution(
        name="tuned",
        datasetGroupArn=shop.group,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
        performHPO=True,
        solutionConfig={
            "hpoConfig": {
                "hpoResourceConfig": {
                    "maxNumberOfTrainingJobs": "3",
                    "maxParallelTrainingJobs": "1",
                },
                "algorithmHyperParameterRanges": {
                    "integerHyperParameterRanges": [
                        {"name": "hidden_dimension", "minValue": 32, "maxValue": 64}
                    ]
                },
            }
        },
    )["solutionArn"]
    shop.emulated.active("solution", solution)
    version = c.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    found = shop.emulated.active("solution_version", version)
    assert found["status"] == "ACTIVE", found.get("failureReason")
    tuned = found["tunedHPOParams"]["algorithmHyperParameters"]
    # The tuned value, or none when the engine kept its default (no trial beat it clearly).
    assert 32 <= int(tuned.get("hidden_dimension", 32)) <= 64
    with pytest.raises(c.exceptions.InvalidInputException):  # 41 jobs: above Personalize's 40
        c.create_solution(
            name="too-many",
            datasetGroupArn=shop.group,
            recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
            performHPO=True,
            solutionConfig={"hpoConfig": {"hpoResourceConfig": {"maxNumberOfTrainingJobs": "41"}}},
        )
